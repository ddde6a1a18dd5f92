"""Campaign sending: start ▸ tick (claim at pace ▸ record) ▸ send ▸ follow statuses ▸ finish.

`start` freezes the audience when the start time comes; `tick` claims the recipients due at
the campaign's pace and records a pending message for each in the same transaction; the
outbound pipeline sends them; `progress` moves each recipient with its message's status;
`reconcile` repairs what a crash left behind. Modules are imported directly (no re-exports):
the outbound pipeline imports `progress`, and this package imports the outbound pipeline.
"""

CAMPAIGNS_QUEUE = "campaigns"
