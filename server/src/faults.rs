//! Fault injection for tests and demos, off unless `--faults` is given: added latency, failed
//! requests (a chosen status, optionally with `Retry-After`) that apply nothing, and connections
//! dropped *after* the batch was applied, so the client never sees the acknowledgement and must
//! resend (the resend is then answered `duplicate`), and whole batches refused when one of their
//! mutations carries a chosen field, so the client must split them to find it. Seeded, so a
//! schedule can be replayed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use wharf::core::id::SplitMix64;
use wharf::core::protocol::Mutation;

/// What to inject into `/push`.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSettings {
    /// Probability in `[0, 1]` that a push fails before anything is applied.
    pub fail_rate: f64,
    /// The status of those failures (a 5xx or 429 to be retried, or anything else to test).
    pub fail_status: u16,
    /// `Retry-After` (seconds) sent with those failures.
    pub retry_after_secs: Option<u64>,
    /// Delay added before every push is handled.
    pub latency: Duration,
    /// Probability in `[0, 1]` that the connection is dropped after the batch was applied.
    pub drop_after_apply_rate: f64,
    pub seed: u64,
    /// A push in which any mutation's `value` or `patch` object has this top-level field is
    /// refused whole (`422 POISON`), nothing of it applied.
    pub reject_field: Option<String>,
}

/// What happens to one push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPlan {
    Proceed,
    Fail,
    DropAfterApply,
}

pub struct Faults {
    pub settings: FaultSettings,
    random: Mutex<SplitMix64>,
    enabled: AtomicBool,
}

impl Faults {
    pub fn new(settings: FaultSettings) -> Faults {
        let random = Mutex::new(SplitMix64::new(settings.seed));
        Faults { settings, random, enabled: AtomicBool::new(true) }
    }

    /// Pauses or resumes injection at run time (a paused server behaves normally).
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Relaxed);
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// When a mutation of the batch carries the poison field ([`FaultSettings::reject_field`]),
    /// the message to refuse the whole batch with. A rule of this server rather than a random
    /// fault, so it holds while injection is paused too.
    pub fn poisoned(&self, mutations: &[Mutation]) -> Option<String> {
        let field = self.settings.reject_field.as_deref()?;
        let culprit = mutations.iter().find(|m| {
            [&m.value, &m.patch].into_iter().flatten().any(|doc| doc.as_object().is_some_and(|o| o.contains_key(field)))
        })?;
        Some(format!(
            "mutation {} has the field \"{field}\" (--reject-batches-with): the whole batch is refused, nothing was applied",
            culprit.id
        ))
    }

    /// Draws the plan for the next push (one draw per push, so a seed replays the same schedule).
    pub fn plan(&self) -> FaultPlan {
        if !self.enabled() {
            return FaultPlan::Proceed;
        }
        let sample = self.random.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).next_f64();
        if sample < self.settings.fail_rate {
            FaultPlan::Fail
        } else if sample < self.settings.fail_rate + self.settings.drop_after_apply_rate {
            FaultPlan::DropAfterApply
        } else {
            FaultPlan::Proceed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(fail_rate: f64, drop_after_apply_rate: f64, seed: u64) -> FaultSettings {
        FaultSettings {
            fail_rate,
            fail_status: 503,
            retry_after_secs: None,
            latency: Duration::ZERO,
            drop_after_apply_rate,
            seed,
            reject_field: None,
        }
    }

    #[test]
    fn rates_shape_the_schedule_and_seeds_replay_it() {
        let faults = Faults::new(settings(0.2, 0.1, 42));
        let plans: Vec<FaultPlan> = (0..10_000).map(|_| faults.plan()).collect();
        let fails = plans.iter().filter(|p| **p == FaultPlan::Fail).count();
        let drops = plans.iter().filter(|p| **p == FaultPlan::DropAfterApply).count();
        assert!((1_700..2_300).contains(&fails), "{fails}");
        assert!((800..1_200).contains(&drops), "{drops}");
        let replay = Faults::new(settings(0.2, 0.1, 42));
        assert!(plans.iter().all(|p| *p == replay.plan()));
        let never = Faults::new(settings(0.0, 0.0, 1));
        assert!((0..1000).all(|_| never.plan() == FaultPlan::Proceed));
        let paused = Faults::new(settings(1.0, 0.0, 1));
        assert_eq!(paused.plan(), FaultPlan::Fail);
        paused.set_enabled(false);
        assert_eq!(paused.plan(), FaultPlan::Proceed);
    }

    #[test]
    fn only_a_top_level_field_of_a_value_or_patch_object_poisons_a_batch() {
        let mutation = |id: &str, payload: serde_json::Value| -> Mutation {
            let mut m = serde_json::json!({"id": id, "seq": 1, "collection": "t", "key": id, "op": "put"});
            m.as_object_mut().unwrap().extend(payload.as_object().unwrap().clone());
            serde_json::from_value(m).unwrap()
        };
        let faults = Faults::new(FaultSettings { reject_field: Some("poison".into()), ..settings(0.0, 0.0, 1) });
        let clean = [
            mutation("a", serde_json::json!({"value": {"nested": {"poison": 1}}})),
            mutation("b", serde_json::json!({"value": ["poison"]})),
            mutation("c", serde_json::json!({"value": "poison"})),
        ];
        assert_eq!(faults.poisoned(&clean), None);
        let bad = mutation("d", serde_json::json!({"patch": {"poison": true}}));
        let message = faults.poisoned(&[clean[0].clone(), bad]).expect("poisoned");
        assert!(message.contains("mutation d"), "{message}");
        faults.set_enabled(false);
        assert!(faults.poisoned(&[mutation("e", serde_json::json!({"value": {"poison": 0}}))]).is_some(), "paused too");
        let inert = Faults::new(settings(0.0, 0.0, 1));
        assert_eq!(inert.poisoned(&[mutation("f", serde_json::json!({"value": {"poison": 0}}))]), None);
    }
}
