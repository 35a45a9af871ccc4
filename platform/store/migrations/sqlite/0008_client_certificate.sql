-- A system client may register a certificate (RFC 8705, issue 3): it then authenticates on the
-- mutual-TLS listener with it (self_signed_tls_client_auth) and its access tokens are bound to it
-- (cnf.x5t#S256). The column holds that thumbprint: base64url of the certificate's SHA-256.
ALTER TABLE oauth_client ADD COLUMN certificate_sha256 TEXT;
