//! The messages a worker has on the wire: a window indexed by publish
//! sequence number. Confirms come back mostly in order, so the window stays
//! short and every operation is O(1) (no hashing on the hot path).

use super::Message;
use std::collections::VecDeque;
use std::time::Instant;

pub(crate) struct Sent<T> {
    pub message: Message<T>,
    pub at: Instant,
}

pub(crate) struct Window<T> {
    /// Sequence number of `slots[0]`.
    base: u64,
    /// `None` once settled; settled slots at the front are popped.
    slots: VecDeque<Option<Sent<T>>>,
    live: usize,
}

impl<T> Window<T> {
    pub fn new() -> Window<T> {
        Window {
            base: 0,
            slots: VecDeque::new(),
            live: 0,
        }
    }

    /// Messages on the wire.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Adds a message about to be published; returns its sequence number.
    pub fn push(&mut self, message: Message<T>) -> u64 {
        let seq = self.base + self.slots.len() as u64;
        self.slots.push_back(Some(Sent {
            message,
            at: Instant::now(),
        }));
        self.live += 1;
        seq
    }

    /// Takes the message `seq` out, if it is still there (it is not once the
    /// window was emptied by a lost connection).
    pub fn take(&mut self, seq: u64) -> Option<Sent<T>> {
        let index = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        let sent = self.slots.get_mut(index)?.take()?;
        self.live -= 1;
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base += 1;
        }
        Some(sent)
    }

    /// The sequence number of the oldest message on the wire that `is` says
    /// is the one (a linear scan: only for returned messages).
    pub fn find(&self, is: impl Fn(&Message<T>) -> bool) -> Option<u64> {
        self.slots
            .iter()
            .position(|slot| slot.as_ref().is_some_and(|sent| is(&sent.message)))
            .map(|index| self.base + index as u64)
    }

    /// Every message still on the wire, oldest first; the window is empty
    /// after this (later sequence numbers keep counting up).
    pub fn drain(&mut self) -> impl Iterator<Item = Message<T>> + '_ {
        self.base += self.slots.len() as u64;
        self.live = 0;
        self.slots.drain(..).flatten().map(|sent| sent.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn message(order: u64) -> Message<u64> {
        Message {
            tag: order,
            id: crate::EventId::new(),
            exchange: "x".into(),
            routing_key: "k".into(),
            body: Bytes::new(),
            order,
            failures: 0,
            options: Default::default(),
            returns: None,
        }
    }

    #[test]
    fn settles_out_of_order_and_drains_the_rest_in_order() {
        let mut w = Window::new();
        let seqs: Vec<u64> = (0..5).map(|i| w.push(message(i))).collect();
        assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
        assert_eq!(w.take(1).map(|s| s.message.tag), Some(1));
        assert_eq!(w.take(1).map(|s| s.message.tag), None);
        assert_eq!(w.take(0).map(|s| s.message.tag), Some(0));
        assert_eq!(w.len(), 3);
        let rest: Vec<u64> = w.drain().map(|m| m.tag).collect();
        assert_eq!(rest, vec![2, 3, 4]);
        assert!(w.is_empty());
        // Stale sequence numbers find nothing; new ones continue after them.
        assert!(w.take(3).is_none());
        assert_eq!(w.push(message(9)), 5);
        assert_eq!(w.take(5).map(|s| s.message.tag), Some(9));
    }
}
