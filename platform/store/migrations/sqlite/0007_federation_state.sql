-- Logins federated to an upstream OpenID Provider (issue 3, Pro Santé Connect): the state of an
-- authorization request between the redirect to the provider and its callback. Kept in the
-- database so that the callback may reach any replica; redeemed once, within ten minutes.
CREATE TABLE auth_federation_state (
    state_hash          TEXT    PRIMARY KEY,
    code_verifier       TEXT    NOT NULL,
    nonce               TEXT    NOT NULL,
    next_path           TEXT    NOT NULL,
    expires_at_us       INTEGER NOT NULL
);
