//! fieldsync gateway (work lands in its own issue).
