"""Read-side data access: typed views over tenant rows, one module per subject."""
