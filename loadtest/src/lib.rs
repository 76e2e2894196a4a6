//! fieldsync loadtest (work lands in its own issue).
