"""RSNA Pneumonia Detection: lung-opacity boxes on chest X-ray DICOMs (Kaggle 2018)."""
