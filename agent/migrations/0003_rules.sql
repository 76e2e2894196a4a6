-- The roster carries the auxiliary mark and the certificate's expiry date, so an
-- offline check answers "auxiliary" or "expired" as the gateway would (DOMAIN R4).
-- A cached roster has neither: it is dropped and synced again from version 0.
ALTER TABLE roster ADD COLUMN auxiliary INTEGER NOT NULL DEFAULT 0;
ALTER TABLE roster ADD COLUMN valid_until INTEGER;
DELETE FROM roster;
UPDATE sync_state SET value = '0' WHERE key = 'roster_version';
