"""Statistics read models: volume, response and resolution times, agents, backlog, campaigns.

Every query runs in the caller's tenant transaction (row-level security) and filters on
`tenant_id` over the indexes of schema.sql's "Version 8: statistics" block.
"""
