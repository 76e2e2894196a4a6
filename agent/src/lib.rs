//! fieldsync agent (work lands in its own issue).
