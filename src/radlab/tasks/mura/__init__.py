"""MURA: study-level normal/abnormal from musculoskeletal radiographs (Rajpurkar et al. 2018)."""
