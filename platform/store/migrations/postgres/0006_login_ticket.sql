-- One-time login tickets (issue 3, CPS card). The card is read on the mutual-TLS listener, which
-- has its own host name, so the session cookie cannot be set there: the listener issues a ticket
-- and redirects to the portal's host, which redeems it once, within a minute, for a session.
-- Kept in lockstep with migrations/sqlite/0006_login_ticket.sql (checked by a test).
CREATE TABLE auth_login_ticket (
    ticket_hash         TEXT    PRIMARY KEY,
    account_id          TEXT    NOT NULL REFERENCES auth_account (id) ON DELETE CASCADE,
    amr                 TEXT    NOT NULL,
    expires_at_us       BIGINT  NOT NULL
);
