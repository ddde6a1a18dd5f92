"""Write-side data access used by the pipelines (synchronous, one connection per transaction)."""
