-- smsgate's schema in PostgreSQL, version 1.
--
-- Every record keeps, in `body`, the same JSON the embedded (sled) store keeps, so the two
-- backends share one model and `smsgate store copy` moves records unchanged; the columns
-- beside it are what records are found, ordered and locked by. Billing systems read the
-- views of a later migration (`smsgate_*`), never these tables: their columns may change.

-- The store's own values (the opt-out erasure salt, ...).
CREATE TABLE meta (
    name text PRIMARY KEY,
    value bytea NOT NULL
);

-- One row per message. `id` is its ULID (26 characters: text order is creation order).
CREATE TABLE messages (
    id text PRIMARY KEY,
    status text NOT NULL,
    recipient text NOT NULL,
    -- Dispatch order of waiting messages: priority (0 high, 1 normal, 2 low), then due time.
    priority smallint NOT NULL,
    due_at timestamptz NOT NULL,
    -- The modem that took it (a `sending` message is decided per modem lease after a crash).
    modem text,
    -- `metadata.invoice`, for the dispute export and the admin page's search.
    invoice text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    body jsonb NOT NULL
);
CREATE INDEX messages_due ON messages (priority, due_at, id)
    WHERE status IN ('queued', 'scheduled');
CREATE INDEX messages_status ON messages (status, id);
CREATE INDEX messages_recipient ON messages (recipient, id);
CREATE INDEX messages_invoice ON messages (invoice, id) WHERE invoice IS NOT NULL;

-- A message's history, hash-chained from sequence 1 (the first entry is implied by the
-- record, as in the embedded store). `json`, not `jsonb`: each entry's hash is of its text
-- exactly as stored.
CREATE TABLE message_events (
    message_id text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    seq integer NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (message_id, seq)
);

-- Webhook deliveries. `seq` is the outbox order (deliveries to one URL with one non-empty
-- ordering key go in it, one at a time).
CREATE TABLE outbox (
    seq bigint PRIMARY KEY,
    id text NOT NULL UNIQUE,
    url text NOT NULL,
    ordering_key text NOT NULL,
    state text NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    body jsonb NOT NULL
);
CREATE SEQUENCE outbox_seq AS bigint START 1;
CREATE INDEX outbox_due ON outbox (next_attempt_at, seq) WHERE state = 'pending';
CREATE INDEX outbox_state ON outbox (state, seq);
CREATE INDEX outbox_ordering ON outbox (url, ordering_key, seq) WHERE state = 'pending';

-- Idempotency keys: (API key name, Idempotency-Key).
CREATE TABLE idempotency (
    key_name text NOT NULL,
    key text NOT NULL,
    at timestamptz NOT NULL,
    body jsonb NOT NULL,
    PRIMARY KEY (key_name, key)
);
CREATE INDEX idempotency_at ON idempotency (at);

-- Inbound texts (replies, keywords, unmatched), by ULID (byte order: arrival order). `sender`
-- is the normalised sender, '' for what could not be read.
CREATE TABLE inbound (
    id text COLLATE "C" PRIMARY KEY,
    sender text NOT NULL,
    -- Stored, not yet acted on (reply, keyword, event).
    pending boolean NOT NULL DEFAULT false,
    received_at timestamptz NOT NULL,
    body jsonb NOT NULL
);
CREATE INDEX inbound_sender ON inbound (sender, id);
CREATE INDEX inbound_pending ON inbound (id) WHERE pending;

-- SHA-256 of (modem, PDU) of every PDU stored: a PDU read twice (after a crash) is kept once.
CREATE TABLE inbound_seen (
    fingerprint bytea PRIMARY KEY,
    -- 'report' for a status report, '' for a text.
    kind text NOT NULL DEFAULT ''
);

-- Parts of concatenated texts still incomplete. `sender` as the PDU gives it (not normalised).
CREATE TABLE fragments (
    modem text COLLATE "C" NOT NULL,
    sender text COLLATE "C" NOT NULL,
    reference integer NOT NULL,
    total smallint NOT NULL,
    part smallint NOT NULL,
    received_at timestamptz NOT NULL,
    body jsonb NOT NULL,
    PRIMARY KEY (modem, sender, reference, total, part)
);

-- Parts of sent messages that await a status report: (modem, TP-MR) finds them.
CREATE TABLE reports_awaited (
    modem text NOT NULL,
    mr smallint NOT NULL,
    message_id text NOT NULL,
    part smallint NOT NULL,
    sent_at timestamptz NOT NULL,
    PRIMARY KEY (modem, mr, message_id, part)
);
CREATE INDEX reports_awaited_message ON reports_awaited (message_id);
CREATE INDEX reports_awaited_sent ON reports_awaited (sent_at);

-- Status reports that matched no sent part, by ULID (byte order: arrival order).
CREATE TABLE reports_unmatched (
    id text COLLATE "C" PRIMARY KEY,
    body jsonb NOT NULL
);

-- Opt-outs in force, by E.164 number.
CREATE TABLE optouts (
    number text PRIMARY KEY,
    body jsonb NOT NULL
);

-- Opt-outs whose number was erased: SHA-256 of the store's salt and the number.
CREATE TABLE optouts_erased (
    hash bytea PRIMARY KEY,
    body jsonb NOT NULL
);

-- Invoice reminder plans; one plan per invoice (the UNIQUE invoice decides between gateways
-- creating one at once). `id` is the ULID: byte order is creation order.
CREATE TABLE plans (
    id text COLLATE "C" PRIMARY KEY,
    invoice text NOT NULL UNIQUE,
    body jsonb NOT NULL
);

-- Templates set through the API.
CREATE TABLE templates (
    name text PRIMARY KEY,
    body jsonb NOT NULL
);

-- Per hour and modem: sent, delivered, failed.
CREATE TABLE hourly (
    hour integer NOT NULL,
    modem text NOT NULL,
    sent bigint NOT NULL DEFAULT 0,
    delivered bigint NOT NULL DEFAULT 0,
    failed bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, modem)
);

-- What is left of a message removed whole, chained per day (days since 1970-01-01, UTC):
-- each links to the day's one before it by the SHA-256 of its text. `json`, not `jsonb`: the
-- hash is of the text exactly as stored. A day's head is taken under an advisory lock.
CREATE TABLE tombstones (
    day integer NOT NULL,
    seq bigint NOT NULL,
    message_id text NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (day, seq)
);
CREATE SEQUENCE tombstones_seq AS bigint START 1;

-- Admin actions through the API, hash-chained, by ULID.
CREATE TABLE audit (
    id text PRIMARY KEY,
    actor text NOT NULL,
    action text NOT NULL,
    at timestamptz NOT NULL,
    body jsonb NOT NULL
);

-- Leases: which gateway drives which modem (`modem:<name>`) and which does each job that only
-- one may do at a time (`job:webhooks`, ...). Renewed by the holder's heartbeat; another
-- gateway takes a lease over once it has expired. Times are the database's own (`now()`),
-- so the gateways' clocks need not agree.
CREATE TABLE leases (
    name text PRIMARY KEY,
    owner text NOT NULL,
    expires_at timestamptz NOT NULL,
    acquired_at timestamptz NOT NULL
);
