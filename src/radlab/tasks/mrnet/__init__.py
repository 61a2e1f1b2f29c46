"""MRNet: knee MRI, three planes x three labels (abnormal, ACL tear, meniscal tear) (Bien et al. 2018)."""
