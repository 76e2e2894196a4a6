//! Development PKI for fieldsync.
