"""Engine core: domain models, errors and data access shared by every process."""
