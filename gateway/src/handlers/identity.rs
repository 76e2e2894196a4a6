//! CheckIdentity (answered from the officer registry, and stored) and
//! PushIdentityChecks (checks made offline, stored idempotently by check id).

use protocol::message::{
    CheckOutcome, IdentityCheck, IdentityCheckAcks, IdentityVerdict, PushIdentityChecks,
};
use protocol::{InvalidField, ResponseBody};

use super::{ConnectionContext, HandlerError};
use crate::state::GatewayState;

fn verdict_label(v: IdentityVerdict) -> &'static str {
    v.as_str()
}

fn validate(check: &IdentityCheck, state: &GatewayState) -> Result<(), InvalidField> {
    check.validate(&state.config.limits)?;
    let texts = [
        Some(check.certificate_number.as_str()),
        check.location.as_deref(),
        check.case_number.as_deref(),
    ];
    if texts.into_iter().flatten().any(|t| t.contains('\0')) {
        return Err(InvalidField::new(
            "identity check",
            "must not contain NUL characters",
        ));
    }
    Ok(())
}

/// Serves an online identity check.
pub(super) async fn check(
    state: &GatewayState,
    ctx: &ConnectionContext,
    check: IdentityCheck,
) -> Result<ResponseBody, HandlerError> {
    validate(&check, state)?;
    let (result, outcome) = state
        .store
        .check_identity_online(&ctx.device_id, &check, state.clock.now())
        .await?;
    if outcome == CheckOutcome::Stored {
        state
            .ingest
            .metrics()
            .identity_checks
            .with_label_values(&["online", verdict_label(result.verdict)])
            .inc();
    }
    tracing::debug!(device = %ctx.device_id, verdict = verdict_label(result.verdict), "identity check");
    Ok(ResponseBody::IdentityResult(result))
}

/// Serves an upload of checks made offline.
pub(super) async fn push(
    state: &GatewayState,
    ctx: &ConnectionContext,
    push: PushIdentityChecks,
) -> Result<ResponseBody, HandlerError> {
    let limit = state.config.limits.max_identity_checks_per_push;
    if push.checks.len() > limit as usize {
        return Err(HandlerError::TooMany {
            what: "identity checks",
            count: push.checks.len(),
            limit,
        });
    }
    let skew = ctx.skew.get().copied().ok_or(HandlerError::HelloRequired)?;
    // One slot per uploaded check: refused ones are answered here, the rest by the store.
    let mut slots = Vec::with_capacity(push.checks.len());
    let mut valid = Vec::with_capacity(push.checks.len());
    for check in push.checks {
        match validate(&check, state) {
            Ok(()) => {
                slots.push(None);
                valid.push(check);
            }
            Err(e) => slots.push(Some((
                check.check_id,
                CheckOutcome::Rejected(e.to_string()),
            ))),
        }
    }
    let stored = state
        .store
        .store_offline_checks(&ctx.device_id, &valid, skew, state.clock.now())
        .await?;
    for ((_, outcome), check) in stored.iter().zip(&valid) {
        if let (CheckOutcome::Stored, Some(answer)) = (outcome, check.offline) {
            state
                .ingest
                .metrics()
                .identity_checks
                .with_label_values(&["offline", verdict_label(answer.verdict)])
                .inc();
        }
    }
    let mut stored = stored.into_iter();
    let acks = slots
        .into_iter()
        .map(|slot| slot.or_else(|| stored.next()))
        .collect::<Option<Vec<_>>>()
        .ok_or(HandlerError::Internal("the store returned too few acks"))?;
    Ok(ResponseBody::IdentityCheckAcks(IdentityCheckAcks { acks }))
}
