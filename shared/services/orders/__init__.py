"""Orders after booking: the lifecycle from the ERP, and B2B history read live from the ERP."""
