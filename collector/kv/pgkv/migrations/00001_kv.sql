-- +goose Up
-- One table holds every bucket: buckets are made by the first Put, which
-- a table per bucket would turn into DDL inside writers' transactions.
-- bytea compares bytewise, the order package kv promises.
CREATE TABLE idk_kv (
    bucket text NOT NULL,
    key bytea NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (bucket, key)
);

-- +goose Down
DROP TABLE idk_kv;
