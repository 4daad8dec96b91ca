"""The audit trail: the hash-chained, signed record of every disclosure.

- `chain`: the signing key, the records' canonical form and hash, the chain's lock and end;
- `writer`: `AuditWriter`, which group-commits each call's record onto the chain;
- `checkpoints`: the signed checkpoints of the chain's end, and their witness file;
- `verify`: `verify`, which walks the database, the archives and the checkpoints as one chain;
- `archive`: retention, records moved to signed archive files (`AuditRetention`);
- `search`: the auditors' search and the citizen's access report.
"""
