//! What the simulated people and browsers do on a device: write (put, patch, delete) in any open
//! tab (the leader hears of it, as through the coordinator), go offline and back, reload or kill
//! a tab, move the sync role between tabs (politely, or by force as when a hung leader is taken
//! over), call `sync()` and `pull()`, and deal with dead letters (retry, edit, discard). The
//! server's operator compacts now and then.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use wharf::core::host::Event;
use wharf::core::replica::Request;
use wharf::core::{Key, OpKind, Payload};

use crate::ledger::{Settled, Written};
use crate::world::{Scheduled, World};

const COLLECTIONS: [&str; 2] = ["todos", "notes"];
const KEYS: u64 = 5;

/// One user action on `device`, then the next one is scheduled.
pub fn act(w: &mut World, device: usize) {
    if w.devices[device].tabs.iter().all(|t| t.host.is_none()) {
        reopen(w, device, 0); // the user comes back to the app
    }
    match w.rng.below(100) {
        0..=54 => write(w, device),
        55..=59 => {
            let online = !w.devices[device].online;
            set_online(w, device, online);
        }
        60..=63 => {
            let tab = w.rng.pick(w.devices[device].tabs.len());
            w.note(|| format!("reload {device}/{tab}"));
            crash(w, device, tab);
            reopen(w, device, tab);
        }
        64..=66 => {
            let tab = w.rng.pick(w.devices[device].tabs.len());
            w.note(|| format!("crash {device}/{tab}"));
            crash(w, device, tab);
        }
        67..=72 => hand_off(w, device),
        73..=77 => call(w, device, false),
        78..=82 => call(w, device, true),
        83..=92 => dead_letters(w, device),
        93 => {
            let keep = w.rng.below(20);
            w.note(|| format!("compact keeping {keep}"));
            w.server.compact(keep);
        }
        94..=95 => lose_connection(w, device),
        _ => {}
    }
    let next = w.now + w.rng.ms(10, 1_500);
    w.schedule(next, Scheduled::User { device });
}

pub fn set_online(w: &mut World, device: usize, online: bool) {
    w.note(|| format!("device {device} online: {online}"));
    w.devices[device].online = online;
    for tab in 0..w.devices[device].tabs.len() {
        w.event(device, tab, if online { Event::Online } else { Event::Offline });
    }
}

/// A tab dies; if it led, another open tab takes the role (the browser released its lock).
pub fn crash(w: &mut World, device: usize, tab: usize) {
    let led = w.devices[device].tabs[tab].leading;
    w.close_tab(device, tab);
    if led {
        if let Some(other) = (0..w.devices[device].tabs.len()).find(|&t| w.devices[device].tabs[t].host.is_some()) {
            w.devices[device].tabs[other].leading = true;
            w.event(device, other, Event::Leading(true));
        }
    }
}

/// Opens a closed tab; it leads when no open tab does.
pub fn reopen(w: &mut World, device: usize, tab: usize) {
    if w.devices[device].tabs[tab].host.is_some() {
        return;
    }
    let leading = w.leader(device).is_none();
    w.open_tab(device, tab, leading);
}

/// Moves the role to another tab: politely (the old leader finishes its step first), or by
/// force (both lead until the old one hears of it).
fn hand_off(w: &mut World, device: usize) {
    let tabs = w.devices[device].tabs.len();
    let Some(from) = w.leader(device) else { return };
    let open = |t: usize| w.devices[device].tabs[t].host.is_some() && !w.devices[device].tabs[t].hung;
    let Some(to) = (1..tabs).map(|i| (from + i) % tabs).find(|&t| open(t)) else {
        return;
    };
    if w.rng.chance(0.5) {
        w.note(|| format!("handoff {device}: {from} -> {to}"));
        let idles = w.devices[device].tabs[from].host.as_ref().map_or(0, |h| h.idles);
        w.devices[device].tabs[from].leading = false;
        w.event(device, from, Event::Leading(false));
        w.schedule(w.now, Scheduled::Handoff { device, from, to, idles });
    } else {
        // The leader froze (a hung page): another tab takes the role over; the frozen one
        // thaws later, with answers and timers that waited.
        w.note(|| format!("takeover {device}: {from} -> {to}"));
        w.devices[device].tabs[from].hung = true;
        w.devices[device].tabs[to].leading = true;
        w.event(device, to, Event::Leading(true));
        let life = w.devices[device].tabs[from].life;
        let later = w.now + w.rng.ms(50, 3_000);
        w.schedule(later, Scheduled::Demote { device, tab: from, life });
    }
}

/// `db.sync()` or `db.pull()`, served by the leader.
fn call(w: &mut World, device: usize, pull: bool) {
    let Some(tab) = w.leader(device) else { return };
    let (now, online) = (w.time_of(device), w.devices[device].online);
    w.with_tab(device, tab, |host| if pull { host.pull(now, online) } else { host.sync(now, online) });
}

/// The IndexedDB connection of a tab dies (WebKit's lost IndexedDB server): its next one or two
/// transactions fail as lost; the replica runs what did not commit again on a new connection.
fn lose_connection(w: &mut World, device: usize) {
    let tab = some_tab(w, device);
    let times = 1 + w.rng.below(2) as u32;
    w.note(|| format!("connection lost at {device}/{tab} for {times} transactions"));
    if let Some(host) = w.devices[device].tabs[tab].host.as_mut() {
        host.losing_txs = times;
    }
}

/// An open tab that is not frozen (0 if there is none: the user's action then finds it closed).
fn some_tab(w: &mut World, device: usize) -> usize {
    let tabs = &w.devices[device].tabs;
    let open: Vec<usize> = (0..tabs.len()).filter(|&t| tabs[t].host.is_some() && !tabs[t].hung).collect();
    if open.is_empty() {
        return 0;
    }
    open[w.rng.pick(open.len())]
}

/// Tells the leader that the outbox grew in tab `from` (the coordinator's message between tabs).
fn kick_leader(w: &mut World, device: usize, from: usize) {
    if let Some(tab) = w.leader(device).filter(|&t| t != from) {
        w.event(device, tab, Event::LocalWrite);
    }
}

fn outbox_ids(w: &World, device: usize) -> BTreeSet<String> {
    w.devices[device]
        .db
        .rows(wharf::core::schema::OUTBOX_STORE)
        .into_iter()
        .filter_map(|(_, v)| Some(v.get("id")?.as_str()?.to_owned()))
        .collect()
}

/// A put, patch or delete of a random document.
fn write(w: &mut World, device: usize) {
    let collection = COLLECTIONS[w.rng.pick(COLLECTIONS.len())];
    let key = format!("k{}", w.rng.below(KEYS));
    let client = w.devices[device].client.clone();
    let token = w.ledger.token(&client);
    let kind = match w.rng.below(10) {
        0..=4 => OpKind::Put,
        5..=7 => OpKind::Patch,
        _ => OpKind::Delete,
    };
    let tab = some_tab(w, device);
    let before = outbox_ids(w, device);
    let now = w.time_of(device);
    // Puts and deletes name their op; a patch's op is found in the outbox, unless a push that
    // started at once folded it into an earlier entry already (its token still tells).
    let written: Option<Option<String>> = match kind {
        OpKind::Put => {
            let doc = json!({"id": key, "w": token, &token: 1, "n": w.rng.below(100)});
            w.with_tab(device, tab, |h| h.write(collection, Payload::Put(doc), None, now).ok()).flatten().map(Some)
        }
        OpKind::Delete => w
            .with_tab(device, tab, |h| h.write(collection, Payload::Delete, Some(Key::Text(key.clone())), now).ok())
            .flatten()
            .map(Some),
        OpKind::Patch => {
            let request = Request::Patch {
                collection: collection.into(),
                key: Key::Text(key.clone()),
                patch: json!({"w": token, &token: 1}),
            };
            let waiter = w.with_tab(device, tab, |h| h.request(request, now));
            let settled = |h: &wharf::core::native_host::NativeHost| waiter.and_then(|id| h.settled.get(&id).cloned());
            let host = w.devices[device].tabs[tab].host.as_ref();
            matches!(host.and_then(settled), Some(Ok(_)))
                .then(|| outbox_ids(w, device).difference(&before).next().cloned())
        }
    };
    let Some(op_id) = written else {
        return; // a patch of a missing document, or a closed tab: nothing was written
    };
    let order = w.ledger.tick();
    w.note(|| format!("write {device} {kind:?} {collection}/{key} {token} as {op_id:?}"));
    let token = (kind != OpKind::Delete).then_some(token);
    let key = Value::from(key).to_string();
    w.ledger.writes.push(Written { client, collection: collection.into(), key, kind, token, op_id, order });
    kick_leader(w, device, tab);
}

/// The user looks at the dead letters and retries, edits (then retries) or discards one.
pub fn dead_letters(w: &mut World, device: usize) {
    let letters = w.dead_letters(device);
    if letters.is_empty() {
        return;
    }
    let letter = letters[w.rng.pick(letters.len())].clone();
    let tab = some_tab(w, device);
    let now = w.time_of(device);
    let id = letter.op.id.clone();
    let fields = |payload: &Payload| match payload {
        Payload::Put(v) | Payload::Patch(v) => v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default(),
        Payload::Delete => BTreeSet::new(),
    };
    let settled = Settled {
        client: w.devices[device].client.clone(),
        collection: letter.op.collection.clone(),
        key: letter.op.key.to_json().to_string(),
        op_id: id.clone(),
        tokens: fields(&letter.op.payload),
        delete: letter.op.payload.kind() == OpKind::Delete,
        order: w.ledger.tick(),
        discarded: false,
    };
    match (w.rng.below(3), &letter.op.payload) {
        (0, _) => {
            w.note(|| format!("retry dead {id}"));
            w.ledger.retried.extend(settled.tokens.iter().cloned());
            w.with_tab(device, tab, |h| h.request(Request::RetryDead(Some(id)), now));
        }
        (1, Payload::Put(_)) => {
            let client = w.devices[device].client.clone();
            let token = w.ledger.token(&client);
            let key = letter.op.key.to_json();
            let doc = json!({"id": key, "w": token, &token: 1, "edited": true});
            w.note(|| format!("edit dead {id} to {token}"));
            w.ledger.settled.push(settled);
            let before = outbox_ids(w, device);
            w.with_tab(device, tab, |h| h.request(Request::EditDead { id: id.clone(), json: doc.to_string() }, now));
            let waiter = w.with_tab(device, tab, |h| h.request(Request::RetryDead(Some(id)), now));
            let host = w.devices[device].tabs[tab].host.as_ref();
            if matches!(host.zip(waiter).and_then(|(h, id)| h.settled.get(&id)), Some(Ok(_))) {
                let op_id = outbox_ids(w, device).difference(&before).next().cloned();
                let order = w.ledger.tick();
                let (collection, key) = (letter.op.collection.clone(), key.to_string());
                let written = Written { client, collection, key, kind: OpKind::Put, token: Some(token), op_id, order };
                w.ledger.writes.push(written);
            }
        }
        _ => {
            w.note(|| format!("discard dead {id}"));
            w.ledger.settled.push(Settled { discarded: true, ..settled });
            w.with_tab(device, tab, |h| h.request(Request::DiscardDead(Some(id)), now));
        }
    }
    kick_leader(w, device, tab);
}
