-- Read-only views for billing systems and reports that prefer SQL to the HTTP API. They are
-- a stable interface (docs/scaling.md, "SQL views"): their names and columns stay, new
-- columns may be added at the end. The tables behind them are not: read the views.

-- Every message with its status.
CREATE VIEW smsgate_messages AS
SELECT
    m.id,
    m.status,
    m.recipient AS to_number,
    m.body ->> 'text' AS text,
    m.invoice,
    m.body -> 'metadata' AS metadata,
    CASE m.priority WHEN 0 THEN 'high' WHEN 2 THEN 'low' ELSE 'normal' END AS priority,
    m.modem,
    m.body ->> 'status_reason' AS status_reason,
    (m.body ->> 'parts')::integer AS parts,
    m.body ->> 'created_by' AS created_by,
    m.created_at,
    m.updated_at,
    (m.body ->> 'send_at')::timestamptz AS send_at,
    (m.body ->> 'sent_at')::timestamptz AS sent_at,
    (m.body ->> 'delivered_at')::timestamptz AS delivered_at,
    jsonb_array_length(coalesce(m.body -> 'replies', '[]'::jsonb)) AS replies
FROM messages m;

-- Every message's history, oldest first per message: entry 0 (accepted) and every change.
CREATE VIEW smsgate_message_history AS
SELECT
    m.id AS message_id,
    0 AS seq,
    m.created_at AS at,
    coalesce(m.body ->> 'accepted_as', 'queued') AS status,
    'accepted' AS kind,
    'accepted' AS reason,
    m.body ->> 'created_by' AS actor
FROM messages m
UNION ALL
SELECT
    e.message_id,
    e.seq,
    (e.body ->> 'at')::timestamptz,
    e.body ->> 'status',
    e.body ->> 'kind',
    e.body ->> 'reason',
    e.body ->> 'actor'
FROM message_events e;

-- Answers matched to the message they answer ("1" = call me, "2" = pay the minimum, ...).
CREATE VIEW smsgate_replies AS
SELECT
    r.value ->> 'inbound_id' AS inbound_id,
    m.id AS message_id,
    m.invoice,
    m.recipient AS from_number,
    r.value ->> 'text' AS text,
    r.value ->> 'choice' AS choice,
    r.value ->> 'action' AS action,
    r.value ->> 'matched_by' AS matched_by,
    (r.value ->> 'at')::timestamptz AS received_at
FROM messages m
CROSS JOIN LATERAL jsonb_array_elements(coalesce(m.body -> 'replies', '[]'::jsonb)) AS r(value);

-- Every text received, matched or not.
CREATE VIEW smsgate_inbound AS
SELECT
    i.id,
    i.sender AS from_number,
    i.body ->> 'text' AS text,
    i.received_at,
    i.body ->> 'modem' AS modem,
    i.body ->> 'in_reply_to' AS in_reply_to,
    i.body ->> 'handling' AS handling,
    coalesce((i.body ->> 'partial')::boolean, false) AS partial
FROM inbound i;

-- The numbers that opted out (STOP), and how.
CREATE VIEW smsgate_optouts AS
SELECT
    o.number,
    (o.body ->> 'opted_out_at')::timestamptz AS opted_out_at,
    o.body ->> 'source' AS source,
    o.body ->> 'keyword' AS keyword,
    o.body ->> 'inbound_id' AS inbound_id
FROM optouts o;
