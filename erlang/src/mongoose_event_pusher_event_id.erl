%% @doc Event IDs (ours, doc/compatibility.md §9): every event gets one
%% when it enters a backend and keeps it through retries, republishes, spool
%% replays and dead-letter replays, so that a consumer can recognise a
%% duplicate. A UUID version 7 (RFC 9562, time-ordered to the millisecond,
%% in order within this node), made by the NIF with Rust's `uuid` crate, in
%% its canonical form, e.g. `<<"0190a5e2-7c1d-7b3e-9f2a-4c6d8e0f1a2b">>'.
-module(mongoose_event_pusher_event_id).

-export([new/0, unix_ms/1]).
-export_type([id/0]).

-type id() :: <<_:288>>.

-spec new() -> id().
new() ->
    mongoose_event_pusher_nif:event_id().

%% @doc When a version 7 ID was made, in milliseconds since the epoch.
-spec unix_ms(id()) -> non_neg_integer().
unix_ms(<<A:8/binary, $-, B:4/binary, $-, _/binary>>) ->
    binary_to_integer(<<A/binary, B/binary>>, 16).
