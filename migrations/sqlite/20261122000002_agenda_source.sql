-- Appointments read from an external agenda (FHIR) keep the resource as the server sent it and
-- its version: write-backs modify that copy (unknown fields and extensions survive) and send
-- `If-Match` with the version; a 412 re-reads and re-applies.
ALTER TABLE appointments ADD COLUMN source TEXT;
ALTER TABLE appointments ADD COLUMN source_version TEXT;
