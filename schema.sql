-- FlowDesk schema: the single source of truth for the data model (DESIGN §4, §6).
-- Applied idempotently by `flowdesk db init`: every statement may run any number of times.
-- Later changes come as numbered migrations recorded in schema_migrations.

SELECT pg_advisory_xact_lock(7265431);  -- one initialiser at a time

CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- Row-level security helpers. A connection states its tenant with
-- set_config('app.tenant_id', …, true); code that legitimately spans tenants (webhook
-- routing, sweepers, ops) says so with set_config('app.scope', 'system', true).
-- A query that forgets its tenant filter therefore sees nothing, not another tenant.
CREATE OR REPLACE FUNCTION flowdesk_tenant() RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('app.tenant_id', true), '')::bigint $$;

CREATE OR REPLACE FUNCTION flowdesk_system() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(current_setting('app.scope', true), '') = 'system' $$;

-- Row-level security for tenant-owned tables: each row visible to its tenant (or to code
-- in system scope), forced even for the tables' owner, and usable by the engine's role.
-- Every version that adds a tenant-owned table calls this for it.
CREATE OR REPLACE FUNCTION flowdesk_isolate(tables text[]) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY tables LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %I', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (tenant_id = flowdesk_tenant() OR flowdesk_system()) '
            'WITH CHECK (tenant_id = flowdesk_tenant() OR flowdesk_system())', t);
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flowdesk_app') THEN
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO flowdesk_app', current_schema());
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO flowdesk_app',
                       current_schema());
        EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO flowdesk_app',
                       current_schema());
    END IF;
END $$;

-- The role the engine acts as. Superusers bypass row-level security, so a superuser login
-- switches to this role (SET ROLE) on connect; a plain owner login is bound by FORCE below.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flowdesk_app') THEN
        CREATE ROLE flowdesk_app NOLOGIN;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'cannot create role flowdesk_app; relying on FORCE ROW LEVEL SECURITY';
END $$;

CREATE SEQUENCE IF NOT EXISTS ticket_protocol_seq;

-- Tenants and people --------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS tenants (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    time_zone       text NOT NULL DEFAULT 'UTC',
    business_hours  jsonb NOT NULL DEFAULT '{}'::jsonb,
    limits          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS users (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email           text NOT NULL CHECK (position('@' IN email) > 1),
    password_hash   text NOT NULL,
    role            text NOT NULL CHECK (role IN ('super', 'admin', 'supervisor', 'agent')),
    token_version   integer NOT NULL DEFAULT 0,
    online          boolean NOT NULL DEFAULT false,
    last_seen_at    timestamptz,
    max_open_tickets integer CHECK (max_open_tickets IS NULL OR max_open_tickets >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- Login is by e-mail alone, so an address belongs to one user on the whole platform.
CREATE UNIQUE INDEX IF NOT EXISTS users_email_key ON users (lower(email));
CREATE INDEX IF NOT EXISTS users_tenant_idx ON users (tenant_id);

CREATE TABLE IF NOT EXISTS queues (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    color           text,
    greeting        text,
    distribution    text NOT NULL DEFAULT 'none'
                    CHECK (distribution IN ('none', 'round_robin', 'least_loaded')),
    business_hours  jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name),
    UNIQUE (tenant_id, id)
);

CREATE TABLE IF NOT EXISTS user_queues (
    tenant_id   bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id     bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    queue_id    bigint NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, queue_id)
);

-- Channels ----------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS chat_flows (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        text NOT NULL,
    definition  jsonb NOT NULL,
    is_default  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);
CREATE UNIQUE INDEX IF NOT EXISTS chat_flows_one_default ON chat_flows (tenant_id) WHERE is_default;

CREATE TABLE IF NOT EXISTS channels (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    type            text NOT NULL
                    CHECK (type IN ('whatsapp', 'messenger', 'instagram', 'telegram', 'sms', 'email')),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- The provider's address for this connection (phone_number_id, page id, bot id…):
    -- webhooks are routed by it, so it is unique per channel type across the platform.
    external_id     text NOT NULL,
    config          jsonb NOT NULL DEFAULT '{}'::jsonb,
    secrets         jsonb NOT NULL DEFAULT '{}'::jsonb,
    status          text NOT NULL DEFAULT 'connected'
                    CHECK (status IN ('connected', 'disconnected', 'error')),
    chat_flow_id    bigint REFERENCES chat_flows(id) ON DELETE SET NULL,
    default_queue_id bigint REFERENCES queues(id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (type, external_id),
    UNIQUE (tenant_id, name)
);

-- Contacts ----------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS contacts (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name            text,
    phone           text CHECK (phone IS NULL OR phone ~ '^\+[1-9][0-9]{6,14}$'),
    email           text,
    is_group        boolean NOT NULL DEFAULT false,
    opted_out       boolean NOT NULL DEFAULT false,
    unreachable     boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- One person, one contact: a phone number (E.164) names one contact per tenant.
CREATE UNIQUE INDEX IF NOT EXISTS contacts_phone_key ON contacts (tenant_id, phone)
    WHERE phone IS NOT NULL;
CREATE INDEX IF NOT EXISTS contacts_name_idx ON contacts (tenant_id, lower(name));

CREATE TABLE IF NOT EXISTS contact_identities (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    contact_id      bigint NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    channel_type    text NOT NULL,
    -- identity_key is what makes two sightings the same person (E.164 for phone channels,
    -- PSID / chat id / address otherwise); external_id is how the provider addresses them.
    identity_key    text NOT NULL,
    external_id     text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, channel_type, identity_key)
);
CREATE INDEX IF NOT EXISTS contact_identities_contact_idx ON contact_identities (contact_id);

CREATE TABLE IF NOT EXISTS contact_custom_fields (
    tenant_id   bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    contact_id  bigint NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    value       text NOT NULL,
    PRIMARY KEY (contact_id, name)
);

CREATE TABLE IF NOT EXISTS tags (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    color       text,
    auto_keywords text[] NOT NULL DEFAULT '{}',
    UNIQUE (tenant_id, name)
);

CREATE TABLE IF NOT EXISTS contact_tags (
    tenant_id   bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    contact_id  bigint NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    tag_id      bigint NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    PRIMARY KEY (contact_id, tag_id)
);

CREATE TABLE IF NOT EXISTS wallets (
    tenant_id   bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    contact_id  bigint PRIMARY KEY REFERENCES contacts(id) ON DELETE CASCADE,
    user_id     bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE
);

-- Tickets and messages ----------------------------------------------------------------

CREATE TABLE IF NOT EXISTS tickets (
    id                  bigserial PRIMARY KEY,
    tenant_id           bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    channel_id          bigint NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    contact_id          bigint NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'open', 'closed')),
    protocol            text NOT NULL UNIQUE,
    unread_count        integer NOT NULL DEFAULT 0 CHECK (unread_count >= 0),
    answered            boolean NOT NULL DEFAULT false,
    is_group            boolean NOT NULL DEFAULT false,
    queue_id            bigint REFERENCES queues(id) ON DELETE SET NULL,
    user_id             bigint REFERENCES users(id) ON DELETE SET NULL,
    chat_flow_id        bigint REFERENCES chat_flows(id) ON DELETE SET NULL,
    chat_flow_state     jsonb,
    bot_retries         integer NOT NULL DEFAULT 0,
    last_message_at     timestamptz,
    last_inbound_at     timestamptz,
    first_response_at   timestamptz,
    closed_at           timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
-- One live ticket per (tenant, channel, contact): find-or-create is INSERT … ON CONFLICT.
CREATE UNIQUE INDEX IF NOT EXISTS tickets_one_live ON tickets (tenant_id, channel_id, contact_id)
    WHERE status IN ('pending', 'open');
CREATE INDEX IF NOT EXISTS tickets_list_idx
    ON tickets (tenant_id, status, last_message_at DESC NULLS LAST, id DESC);
CREATE INDEX IF NOT EXISTS tickets_contact_idx ON tickets (contact_id);

CREATE TABLE IF NOT EXISTS ticket_events (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    ticket_id       bigint NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    type            text NOT NULL,
    user_id         bigint REFERENCES users(id) ON DELETE SET NULL,
    data            jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ticket_events_ticket_idx ON ticket_events (ticket_id, id);

CREATE TABLE IF NOT EXISTS messages (
    id                      bigserial PRIMARY KEY,
    tenant_id               bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    ticket_id               bigint NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    contact_id              bigint NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    channel_id              bigint NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    direction               text NOT NULL CHECK (direction IN ('in', 'out')),
    type                    text NOT NULL,
    body                    text,
    media                   jsonb NOT NULL DEFAULT '[]'::jsonb,
    location                jsonb,
    shared_contacts         jsonb,
    referral                jsonb,
    reply_id                text,
    quoted_message_id       bigint REFERENCES messages(id) ON DELETE SET NULL,
    quoted_provider_message_id text,
    provider_message_id     text,
    provider_timestamp      timestamptz,
    status                  text NOT NULL DEFAULT 'pending'
                            CHECK (status IN ('pending', 'sent', 'delivered', 'read', 'failed',
                                              'received')),
    status_at               timestamptz,
    error_code              integer,
    error_message           text,
    send_type               text CHECK (send_type IN ('chat', 'bot', 'campaign', 'api', 'schedule')),
    user_id                 bigint REFERENCES users(id) ON DELETE SET NULL,
    edited_at               timestamptz,
    deleted_at              timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now()
);
-- One provider event, one effect.
CREATE UNIQUE INDEX IF NOT EXISTS messages_provider_key ON messages (channel_id, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_ticket_idx ON messages (ticket_id, id);

-- A status that arrives before its message (providers do not promise order) waits here.
CREATE TABLE IF NOT EXISTS message_status_events (
    id                  bigserial PRIMARY KEY,
    tenant_id           bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    channel_id          bigint NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    provider_message_id text NOT NULL,
    message_id          bigint REFERENCES messages(id) ON DELETE CASCADE,
    status              text NOT NULL CHECK (status IN ('sent', 'delivered', 'read', 'failed')),
    error_code          integer,
    error_message       text,
    provider_timestamp  timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel_id, provider_message_id, status)
);
CREATE INDEX IF NOT EXISTS message_status_events_message_idx ON message_status_events (message_id);

CREATE TABLE IF NOT EXISTS message_reactions (
    tenant_id           bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    message_id          bigint NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    contact_id          bigint NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    emoji               text NOT NULL,
    provider_timestamp  timestamptz NOT NULL,
    PRIMARY KEY (message_id, contact_id)
);

CREATE TABLE IF NOT EXISTS fast_replies (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    shortcut    text NOT NULL CHECK (length(shortcut) BETWEEN 1 AND 50),
    body        text NOT NULL,
    media       jsonb NOT NULL DEFAULT '[]'::jsonb,
    UNIQUE (tenant_id, shortcut)
);

CREATE TABLE IF NOT EXISTS auto_replies (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    channel_id  bigint REFERENCES channels(id) ON DELETE CASCADE,
    name        text NOT NULL,
    match_kind  text NOT NULL CHECK (match_kind IN ('keyword', 'regex')),
    pattern     text NOT NULL,
    reply       text NOT NULL,
    priority    integer NOT NULL DEFAULT 0,
    active_from time,
    active_to   time,
    enabled     boolean NOT NULL DEFAULT true,
    UNIQUE (tenant_id, name)
);

CREATE TABLE IF NOT EXISTS settings (
    tenant_id   bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    key         text NOT NULL,
    value       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);

-- Campaigns ---------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS campaigns (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    channel_id      bigint NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    name            text NOT NULL,
    status          text NOT NULL DEFAULT 'draft'
                    CHECK (status IN ('draft', 'scheduled', 'running', 'paused', 'finished',
                                      'cancelled', 'failed')),
    variants        jsonb NOT NULL DEFAULT '[]'::jsonb,
    audience        jsonb NOT NULL DEFAULT '{}'::jsonb,
    start_at        timestamptz,
    end_at          timestamptz,
    send_window     jsonb,
    delay_ms        integer NOT NULL DEFAULT 0 CHECK (delay_ms >= 0),
    counts          jsonb NOT NULL DEFAULT '{}'::jsonb,
    failure_reason  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS campaign_contacts (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    campaign_id     bigint NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    contact_id      bigint NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    variant         smallint,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'claimed', 'sent', 'delivered', 'read', 'failed',
                                      'skipped')),
    message_id      bigint REFERENCES messages(id) ON DELETE SET NULL,
    reason          text,
    claimed_at      timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- One campaign send per (campaign, contact).
    UNIQUE (campaign_id, contact_id)
);
CREATE INDEX IF NOT EXISTS campaign_contacts_pending_idx ON campaign_contacts (campaign_id, id)
    WHERE status = 'pending';

-- Integrations ------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS api_clients (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name            text NOT NULL,
    token_hash      text NOT NULL UNIQUE,
    permissions     text[] NOT NULL DEFAULT '{}',
    revoked_at      timestamptz,
    last_used_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS webhook_subscriptions (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    url         text NOT NULL,
    events      text[] NOT NULL,
    secret      text NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    subscription_id bigint NOT NULL REFERENCES webhook_subscriptions(id) ON DELETE CASCADE,
    event           text NOT NULL,
    payload         jsonb NOT NULL,
    status_code     integer,
    latency_ms      integer,
    attempts        integer NOT NULL DEFAULT 0,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Durability and operations -----------------------------------------------------------

-- Every accepted webhook, raw, committed before the provider gets its 2xx.
CREATE TABLE IF NOT EXISTS inbox (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    channel_id      bigint NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    -- A redelivered webhook carries the same bytes (or the same provider event id), so the
    -- second copy is a no-op here, before any work is queued.
    dedupe_key      text NOT NULL,
    body            bytea NOT NULL,
    content_type    text NOT NULL DEFAULT 'application/json',
    received_at     timestamptz NOT NULL DEFAULT now(),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'processed', 'partial', 'ignored', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    enqueued_at     timestamptz,
    processed_at    timestamptz,
    note            text,
    UNIQUE (channel_id, dedupe_key)
);
CREATE INDEX IF NOT EXISTS inbox_pending_idx ON inbox (received_at) WHERE status = 'pending';

-- What must happen after a pipeline transaction commits (realtime events, tenant webhooks).
CREATE TABLE IF NOT EXISTS outbox (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    topic           text NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE IF NOT EXISTS dead_letters (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint REFERENCES tenants(id) ON DELETE CASCADE,
    actor           text NOT NULL,
    queue           text NOT NULL,
    message_id      text,
    payload         jsonb NOT NULL,
    error_class     text NOT NULL,
    error_message   text NOT NULL,
    traceback       text,
    attempts        integer NOT NULL DEFAULT 1,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    requeued_at     timestamptz,
    requeue_count   integer NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS dead_letters_live_idx ON dead_letters (created_at DESC)
    WHERE requeued_at IS NULL;
CREATE INDEX IF NOT EXISTS dead_letters_actor_idx ON dead_letters (actor, error_class);

CREATE TABLE IF NOT EXISTS audit_log (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint REFERENCES tenants(id) ON DELETE CASCADE,
    user_id     bigint REFERENCES users(id) ON DELETE SET NULL,
    action      text NOT NULL,
    target      text,
    data        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS sla_policies (
    id                      bigserial PRIMARY KEY,
    tenant_id               bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name                    text NOT NULL,
    queue_id                bigint REFERENCES queues(id) ON DELETE CASCADE,
    tag_id                  bigint REFERENCES tags(id) ON DELETE CASCADE,
    first_response_s        integer CHECK (first_response_s > 0),
    next_response_s         integer CHECK (next_response_s > 0),
    resolution_s            integer CHECK (resolution_s > 0),
    business_hours_only     boolean NOT NULL DEFAULT true,
    escalate_to_queue_id    bigint REFERENCES queues(id) ON DELETE SET NULL,
    escalate_to_user_id     bigint REFERENCES users(id) ON DELETE SET NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE IF NOT EXISTS sla_events (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    policy_id   bigint NOT NULL REFERENCES sla_policies(id) ON DELETE CASCADE,
    ticket_id   bigint NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('first_response', 'next_response', 'resolution')),
    due_at      timestamptz NOT NULL,
    breached_at timestamptz NOT NULL DEFAULT now(),
    -- Recorded once per breach.
    UNIQUE (policy_id, ticket_id, kind, due_at)
);

-- Row-level security on every tenant-owned table ----------------------------------------

SELECT flowdesk_isolate(ARRAY[
    'users', 'queues', 'user_queues', 'chat_flows', 'channels', 'contacts',
    'contact_identities', 'contact_custom_fields', 'tags', 'contact_tags', 'wallets',
    'tickets', 'ticket_events', 'messages', 'message_status_events', 'message_reactions',
    'fast_replies', 'auto_replies', 'settings', 'campaigns', 'campaign_contacts',
    'api_clients', 'webhook_subscriptions', 'webhook_deliveries', 'inbox', 'outbox',
    'dead_letters', 'audit_log', 'sla_policies', 'sla_events'
]);
-- A tenant row is its own tenant's.
DO $$
BEGIN
    ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
    ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
    DROP POLICY IF EXISTS tenant_isolation ON tenants;
    CREATE POLICY tenant_isolation ON tenants
        USING (id = flowdesk_tenant() OR flowdesk_system())
        WITH CHECK (id = flowdesk_tenant() OR flowdesk_system());
END $$;

INSERT INTO schema_migrations (version) VALUES (1) ON CONFLICT (version) DO NOTHING;

-- Version 2: every channel in and out ------------------------------------------------------
-- Provider error codes are not all numbers (SMTP replies, Telegram descriptions, our own
-- "outside_window"), so they are kept as text.
DO $$
BEGIN
    IF (SELECT data_type FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'messages'
          AND column_name = 'error_code') <> 'text' THEN
        ALTER TABLE messages ALTER COLUMN error_code TYPE text USING error_code::text;
        ALTER TABLE message_status_events ALTER COLUMN error_code TYPE text
            USING error_code::text;
    END IF;
END $$;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS author_external_id text;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS author_name text;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS subject text;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS thread_ids text[] NOT NULL DEFAULT '{}';
ALTER TABLE messages ADD COLUMN IF NOT EXISTS story_url text;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS media_url text;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS template jsonb;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS send_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS sending_at timestamptz;
CREATE INDEX IF NOT EXISTS messages_outbound_contact_idx ON messages (channel_id, contact_id, id)
    WHERE direction = 'out';
INSERT INTO schema_migrations (version) VALUES (2) ON CONFLICT (version) DO NOTHING;

-- Version 3: the agent and integration API ----------------------------------------------
-- Refresh tokens rotate: each use replaces the token; reusing a replaced one revokes the
-- whole family (a stolen token is detected the moment both parties use it).
CREATE TABLE IF NOT EXISTS refresh_tokens (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id         bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    family_id       uuid NOT NULL,
    token_hash      text NOT NULL UNIQUE,
    token_version   integer NOT NULL,
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    used_at         timestamptz,
    revoked_at      timestamptz
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family_idx ON refresh_tokens (family_id);
ALTER TABLE users ADD COLUMN IF NOT EXISTS totp_secret text;
ALTER TABLE users ADD COLUMN IF NOT EXISTS totp_enabled boolean NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN IF NOT EXISTS backup_code_hashes text[] NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN IF NOT EXISTS password_changed_at timestamptz;
ALTER TABLE api_clients ADD COLUMN IF NOT EXISTS token_prefix text;
ALTER TABLE api_clients ADD COLUMN IF NOT EXISTS created_by bigint REFERENCES users(id)
    ON DELETE SET NULL;
-- An API client's retry with the same external_key gets the same message, never a second.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS external_key text;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS api_client_id bigint REFERENCES api_clients(id)
    ON DELETE SET NULL;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS scheduled_at timestamptz;
CREATE UNIQUE INDEX IF NOT EXISTS messages_external_key ON messages (tenant_id, external_key)
    WHERE external_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_scheduled_idx ON messages (scheduled_at)
    WHERE status = 'pending' AND scheduled_at IS NOT NULL;
ALTER TABLE tickets ADD COLUMN IF NOT EXISTS accepted_at timestamptz;
ALTER TABLE contacts ADD COLUMN IF NOT EXISTS merged_into_id bigint REFERENCES contacts(id)
    ON DELETE SET NULL;
ALTER TABLE webhook_deliveries ADD COLUMN IF NOT EXISTS outbox_id bigint;
ALTER TABLE webhook_deliveries ADD COLUMN IF NOT EXISTS error text;
ALTER TABLE webhook_deliveries ADD COLUMN IF NOT EXISTS last_attempt_at timestamptz;
CREATE UNIQUE INDEX IF NOT EXISTS webhook_deliveries_once
    ON webhook_deliveries (subscription_id, outbox_id) WHERE outbox_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS tickets_queue_idx ON tickets (tenant_id, queue_id, status);
CREATE INDEX IF NOT EXISTS tickets_user_idx ON tickets (tenant_id, user_id, status);
-- The sweep looks for recent inbound media never downloaded.
CREATE INDEX IF NOT EXISTS messages_inbound_media_idx ON messages (created_at)
    WHERE direction = 'in' AND media <> '[]'::jsonb;
SELECT flowdesk_isolate(ARRAY['refresh_tokens']);
INSERT INTO schema_migrations (version) VALUES (3) ON CONFLICT (version) DO NOTHING;

-- Version 4: campaigns ------------------------------------------------------------------
-- Every status change of a campaign, validated in code and recorded here.
CREATE TABLE IF NOT EXISTS campaign_events (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    campaign_id bigint NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    from_status text,
    to_status   text NOT NULL,
    user_id     bigint REFERENCES users(id) ON DELETE SET NULL,
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS campaign_events_campaign_idx ON campaign_events (campaign_id, id);
-- Addresses a tenant must never message again, whatever the audience says.
CREATE TABLE IF NOT EXISTS suppression_list (
    tenant_id   bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    address     text NOT NULL,
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, address)
);
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS time_zone text;
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS rate_per_min integer
    CHECK (rate_per_min IS NULL OR rate_per_min > 0);
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS started_at timestamptz;
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS finished_at timestamptz;
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS next_send_at timestamptz;
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS created_by bigint REFERENCES users(id)
    ON DELETE SET NULL;
CREATE INDEX IF NOT EXISTS campaigns_due_idx ON campaigns (start_at)
    WHERE status = 'scheduled';
CREATE INDEX IF NOT EXISTS campaigns_running_idx ON campaigns (next_send_at)
    WHERE status = 'running';
ALTER TABLE campaign_contacts ADD COLUMN IF NOT EXISTS sent_at timestamptz;
ALTER TABLE campaign_contacts ADD COLUMN IF NOT EXISTS error_code text;
ALTER TABLE campaign_contacts ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS campaign_contacts_claimed_idx ON campaign_contacts (campaign_id, claimed_at)
    WHERE status = 'claimed';
CREATE INDEX IF NOT EXISTS campaign_contacts_message_idx ON campaign_contacts (message_id)
    WHERE message_id IS NOT NULL;
SELECT flowdesk_isolate(ARRAY['campaign_events', 'suppression_list']);
INSERT INTO schema_migrations (version) VALUES (4) ON CONFLICT (version) DO NOTHING;

-- Version 5: routing: business hours, distribution, ticket lifecycle, SLA -------------
-- Round-robin fairness: the member of a queue assigned longest ago goes next.
ALTER TABLE user_queues ADD COLUMN IF NOT EXISTS last_assigned_at timestamptz;
-- An agent's load (live tickets assigned to them) and the tickets waiting for an agent.
CREATE INDEX IF NOT EXISTS tickets_agent_load_idx ON tickets (tenant_id, user_id)
    WHERE status IN ('pending', 'open') AND user_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS tickets_waiting_idx ON tickets (tenant_id, queue_id, created_at)
    WHERE status = 'pending' AND user_id IS NULL;
CREATE INDEX IF NOT EXISTS tickets_inactive_idx ON tickets (tenant_id, last_message_at)
    WHERE status IN ('pending', 'open');
CREATE INDEX IF NOT EXISTS sla_events_tenant_idx ON sla_events (tenant_id, breached_at DESC, id);
CREATE INDEX IF NOT EXISTS sla_events_ticket_idx ON sla_events (ticket_id, kind);
ALTER TABLE sla_policies ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now();
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'sla_policies_has_target'
                   AND conrelid = 'sla_policies'::regclass) THEN
        ALTER TABLE sla_policies ADD CONSTRAINT sla_policies_has_target CHECK (
            first_response_s IS NOT NULL OR next_response_s IS NOT NULL
            OR resolution_s IS NOT NULL);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'sla_policies_one_subject'
                   AND conrelid = 'sla_policies'::regclass) THEN
        ALTER TABLE sla_policies ADD CONSTRAINT sla_policies_one_subject
            CHECK (queue_id IS NULL OR tag_id IS NULL);
    END IF;
END $$;
INSERT INTO schema_migrations (version) VALUES (5) ON CONFLICT (version) DO NOTHING;

-- Version 6: automation: chat flows, auto-replies, auto-tags, templates ---------------
-- When a waiting bot gives up on the customer and hands the ticket over (scheduler).
ALTER TABLE tickets ADD COLUMN IF NOT EXISTS bot_timeout_at timestamptz;
CREATE INDEX IF NOT EXISTS tickets_bot_timeout_idx ON tickets (bot_timeout_at)
    WHERE bot_timeout_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS auto_replies_tenant_idx ON auto_replies (tenant_id, priority DESC, id);
CREATE INDEX IF NOT EXISTS ticket_events_type_idx ON ticket_events (ticket_id, type);
-- Tag a contact whose inbound message matches a keyword or a regular expression.
CREATE TABLE IF NOT EXISTS auto_tag_rules (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    tag_id      bigint NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    channel_id  bigint REFERENCES channels(id) ON DELETE CASCADE,
    match_kind  text NOT NULL CHECK (match_kind IN ('keyword', 'regex')),
    pattern     text NOT NULL CHECK (length(pattern) BETWEEN 1 AND 200),
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, tag_id, match_kind, pattern)
);
CREATE INDEX IF NOT EXISTS auto_tag_rules_tenant_idx ON auto_tag_rules (tenant_id, id);
SELECT flowdesk_isolate(ARRAY['auto_tag_rules']);
INSERT INTO schema_migrations (version) VALUES (6) ON CONFLICT (version) DO NOTHING;

-- Version 7: operations: ops console, metrics, correlation ids ------------------------
-- logs and metrics: the id that follows one provider event from webhook to delivery.
ALTER TABLE inbox ADD COLUMN IF NOT EXISTS correlation_id text;
-- ops console: the inbox page lists the latest events set aside, with their reasons, without
-- walking every processed row.
CREATE INDEX IF NOT EXISTS inbox_set_aside_idx ON inbox (id DESC)
    WHERE status IN ('ignored', 'dead');
INSERT INTO schema_migrations (version) VALUES (7) ON CONFLICT (version) DO NOTHING;

-- Version 8: statistics ---------------------------------------------------------------
-- Volume by channel / day: a range scan over one tenant's messages in a period.
CREATE INDEX IF NOT EXISTS messages_stats_idx ON messages (tenant_id, created_at)
    INCLUDE (channel_id, direction, ticket_id, user_id);
-- First-contact resolution: did anyone but the ticket's agent write in it?
CREATE INDEX IF NOT EXISTS messages_agent_idx ON messages (ticket_id, user_id)
    WHERE direction = 'out' AND user_id IS NOT NULL;
-- Tickets created / first response in a period.
CREATE INDEX IF NOT EXISTS tickets_created_stats_idx ON tickets (tenant_id, created_at)
    INCLUDE (channel_id, queue_id, user_id, first_response_at, last_inbound_at);
-- Resolution and first-contact resolution: tickets closed in a period.
CREATE INDEX IF NOT EXISTS tickets_closed_stats_idx ON tickets (tenant_id, closed_at)
    INCLUDE (channel_id, queue_id, user_id, created_at, last_inbound_at)
    WHERE closed_at IS NOT NULL;
-- The backlog reads the live tickets through Version 5's partial indexes; first-contact
-- resolution reads ticket_events_type_idx (Version 6).
CREATE INDEX IF NOT EXISTS campaigns_created_idx ON campaigns (tenant_id, created_at);
CREATE INDEX IF NOT EXISTS campaign_contacts_status_idx ON campaign_contacts (campaign_id, status);
INSERT INTO schema_migrations (version) VALUES (8) ON CONFLICT (version) DO NOTHING;

-- Version 9: data protection and backpressure -----------------------------------------
-- data protection
-- An erased contact keeps its row (tickets and statistics still point at it), without
-- personal data; a redacted message keeps its ids and status, without content.
ALTER TABLE contacts ADD COLUMN IF NOT EXISTS erased_at timestamptz;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS redacted_at timestamptz;
INSERT INTO schema_migrations (version) VALUES (9) ON CONFLICT (version) DO NOTHING;

-- Version 10: campaign imports and WhatsApp templates ---------------------------------
-- A CSV import of contacts for campaigns: who imported which file, its row counts, its bad
-- rows by line, and the contacts its good rows became (a campaign's audience source).
-- (WhatsApp templates live in campaigns.variants: no DDL.)
CREATE TABLE IF NOT EXISTS campaign_imports (
    id               bigserial PRIMARY KEY,
    tenant_id        bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    channel_id       bigint NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    -- the first campaign that targeted the import
    campaign_id      bigint REFERENCES campaigns(id) ON DELETE SET NULL,
    filename         text,
    created_by       bigint REFERENCES users(id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    rows_total       integer NOT NULL DEFAULT 0 CHECK (rows_total >= 0),
    rows_valid       integer NOT NULL DEFAULT 0 CHECK (rows_valid >= 0),
    rows_invalid     integer NOT NULL DEFAULT 0 CHECK (rows_invalid >= 0),
    contacts_created integer NOT NULL DEFAULT 0 CHECK (contacts_created >= 0),
    status           text NOT NULL DEFAULT 'completed'
                     CHECK (status IN ('completed', 'completed_with_errors', 'no_valid_rows'))
);
CREATE INDEX IF NOT EXISTS campaign_imports_tenant_idx ON campaign_imports (tenant_id, id);
CREATE TABLE IF NOT EXISTS campaign_import_errors (
    tenant_id  bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    import_id  bigint NOT NULL REFERENCES campaign_imports(id) ON DELETE CASCADE,
    line       integer NOT NULL,
    reason     text NOT NULL,
    PRIMARY KEY (import_id, line)
);
CREATE TABLE IF NOT EXISTS campaign_import_contacts (
    tenant_id  bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    import_id  bigint NOT NULL REFERENCES campaign_imports(id) ON DELETE CASCADE,
    contact_id bigint NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    line       integer,
    PRIMARY KEY (import_id, contact_id)
);
CREATE INDEX IF NOT EXISTS campaign_import_contacts_contact_idx
    ON campaign_import_contacts (contact_id);
SELECT flowdesk_isolate(ARRAY['campaign_imports', 'campaign_import_errors',
                             'campaign_import_contacts']);
-- Imports recorded in audit_log before this version move here under the same ids (campaigns
-- name them in audience.csv_import_id). Idempotent: moved rows are not moved again.
DO $$
BEGIN
    PERFORM set_config('app.scope', 'system', true);
    INSERT INTO campaign_imports (id, tenant_id, channel_id, created_by, created_at, rows_total,
                                  rows_valid, rows_invalid, contacts_created, status)
    SELECT a.id, a.tenant_id, ch.id, a.user_id, a.created_at,
           coalesce((a.data->>'total_rows')::int, 0), coalesce((a.data->>'valid')::int, 0),
           coalesce((a.data->>'error_count')::int, 0), coalesce((a.data->>'created')::int, 0),
           CASE WHEN coalesce((a.data->>'valid')::int, 0) = 0 THEN 'no_valid_rows'
                WHEN coalesce((a.data->>'error_count')::int, 0) > 0 THEN 'completed_with_errors'
                ELSE 'completed' END
    FROM audit_log a
    JOIN channels ch ON ch.id = (a.data->>'channel_id')::bigint AND ch.tenant_id = a.tenant_id
    WHERE a.action = 'campaign.csv_import'
      AND NOT EXISTS (SELECT 1 FROM campaign_imports i WHERE i.id = a.id)
    ON CONFLICT (id) DO NOTHING;
    INSERT INTO campaign_import_errors (tenant_id, import_id, line, reason)
    SELECT a.tenant_id, a.id, (e->>'line')::int, e->>'reason'
    FROM audit_log a
    JOIN campaign_imports i ON i.id = a.id AND i.tenant_id = a.tenant_id
    CROSS JOIN LATERAL jsonb_array_elements(coalesce(a.data->'errors', '[]')) AS e
    WHERE a.action = 'campaign.csv_import'
    ON CONFLICT DO NOTHING;
    INSERT INTO campaign_import_contacts (tenant_id, import_id, contact_id)
    SELECT a.tenant_id, a.id, c.id
    FROM audit_log a
    JOIN campaign_imports i ON i.id = a.id AND i.tenant_id = a.tenant_id
    CROSS JOIN LATERAL jsonb_array_elements_text(coalesce(a.data->'contact_ids', '[]')) AS x
    JOIN contacts c ON c.id = x::bigint AND c.tenant_id = a.tenant_id
    WHERE a.action = 'campaign.csv_import'
    ON CONFLICT DO NOTHING;
    -- New imports get ids after the moved ones.
    PERFORM setval(pg_get_serial_sequence('campaign_imports', 'id'), m)
    FROM (SELECT max(id) AS m FROM campaign_imports) x
    WHERE m > coalesce(
        pg_sequence_last_value(pg_get_serial_sequence('campaign_imports', 'id')::regclass), 0);
END $$;
INSERT INTO schema_migrations (version) VALUES (10) ON CONFLICT (version) DO NOTHING;

-- Version 11: message edits and deletions ---------------------------------------------
-- An edit or deletion of a message the provider already has: asked for by an agent, carried
-- out by a worker, its outcome kept. One unfinished change per message at a time.
CREATE TABLE IF NOT EXISTS message_changes (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    message_id      bigint NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('edit', 'delete')),
    body            text,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    error_code      text,
    error_message   text,
    attempts        integer NOT NULL DEFAULT 0,
    -- Set while a worker asks the provider; a lease, so a crashed worker's claim expires.
    claimed_at      timestamptz,
    requested_by    bigint REFERENCES users(id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    CHECK ((kind = 'edit') = (body IS NOT NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS message_changes_one_pending ON message_changes (message_id)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS message_changes_message_idx ON message_changes (message_id, id);
SELECT flowdesk_isolate(ARRAY['message_changes']);
INSERT INTO schema_migrations (version) VALUES (11) ON CONFLICT (version) DO NOTHING;

-- Version 12: sends nothing will finish -----------------------------------------------
-- When a claimed send was last handed back for a later try: a retry whose broker message
-- was lost (a flushed broker, a failed enqueue) is found by the sweep once long overdue.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS released_at timestamptz;
-- The sweep reads only the few pending outbound messages, never the whole table.
CREATE INDEX IF NOT EXISTS messages_unsent_idx ON messages (id)
    WHERE direction = 'out' AND status = 'pending';
-- The same for webhook deliveries: the sweep reads the undelivered ones only.
CREATE INDEX IF NOT EXISTS webhook_deliveries_undelivered_idx ON webhook_deliveries (id)
    WHERE delivered_at IS NULL;
-- A ticket's protocol: the UTC day, then the sequence zero-padded to at least 8 digits
-- (never cut: lpad alone would truncate past 99,999,999 and repeat protocols).
CREATE OR REPLACE FUNCTION flowdesk_next_protocol() RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD') || lpad(n, greatest(8, length(n)), '0')
    FROM (SELECT nextval('ticket_protocol_seq')::text AS n) seq
$$;
INSERT INTO schema_migrations (version) VALUES (12) ON CONFLICT (version) DO NOTHING;
