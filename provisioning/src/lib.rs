//! fieldsync provisioning (work lands in its own issue).
