"""Data protection (LGPD/GDPR): export and erase a contact, and message retention."""
