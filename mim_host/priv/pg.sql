-- The push subscriptions table of MongooseIM's mod_event_pusher_push_rdbms,
-- with the columns, primary key and index of MongooseIM's priv/pg.sql.
-- Loaded into the test database by scripts/services.sh.
CREATE TABLE event_pusher_push_subscription (
    owner_jid VARCHAR(250),
    node VARCHAR(250),
    pubsub_jid VARCHAR(250),
    form JSON NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (owner_jid, node, pubsub_jid)
);

CREATE INDEX i_event_pusher_push_subscription ON event_pusher_push_subscription(owner_jid);
