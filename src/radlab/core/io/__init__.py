"""Reading images, DICOM and volumes robustly; writing outputs atomically."""
