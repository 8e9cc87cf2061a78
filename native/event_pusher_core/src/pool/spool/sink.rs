//! Acks from one place for every backend: the pool's outcome sink, wrapped.
//! It sees every outcome of every job on the reporter thread, takes the
//! spool's seq off the tag, sends the seqs of finished jobs to the writer
//! (but for dead letters: see [`super::becomes_dead_letter`]), and hands the caller's tags to the caller's sink.

use super::writer::Control;
use super::{becomes_dead_letter, finishes, Spooled};
use crate::report::{Outcome, OutcomeSink};
use crossbeam_channel::Sender;

pub(crate) struct SpoolSink<S, T> {
    inner: S,
    /// `None` for a pool without a spool.
    acks: Option<Sender<Control>>,
    out: Vec<(T, Outcome)>,
}

impl<S, T> SpoolSink<S, T> {
    pub fn new(inner: S, acks: Option<Sender<Control>>) -> Self {
        SpoolSink {
            inner,
            acks,
            out: Vec::new(),
        }
    }
}

impl<T: Send + 'static, S: OutcomeSink<T>> OutcomeSink<Spooled<T>> for SpoolSink<S, T> {
    fn results(&mut self, batch: &mut Vec<(Spooled<T>, Outcome)>) {
        let mut done = Vec::new();
        for (tag, outcome) in batch.drain(..) {
            if let Some(seq) = tag.seq {
                // A dead letter's record goes once the letter is on disk.
                if finishes(&outcome) && !becomes_dead_letter(&outcome) {
                    done.push(seq);
                }
            }
            self.out.push((tag.tag, outcome));
        }
        if let (Some(acks), false) = (&self.acks, done.is_empty()) {
            // Fails only once the writer is gone (the pool closed): the
            // events stay in the spool and are delivered again, with their ID.
            let _ = acks.send(Control::Acks(done));
        }
        self.inner.results(&mut self.out);
        self.out.clear();
    }

    fn panicked(&mut self, location: &'static str) {
        self.inner.panicked(location);
    }
}
