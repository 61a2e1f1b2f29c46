"""RSNA Intracranial Hemorrhage Detection: six labels per head CT slice (Kaggle 2019)."""
