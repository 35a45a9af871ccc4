-- Token signing keys of two algorithms (issue 3): ES256 as before, and RS256, which OpenID
-- Connect requires for ID tokens. Existing keys are ES256. For an RS256 key, private_pkcs8 holds
-- the PKCS#1 private key and public_x/public_y the JWK members n/e.
ALTER TABLE oauth_signing_key ADD COLUMN alg TEXT NOT NULL DEFAULT 'ES256';
