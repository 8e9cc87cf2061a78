%% @doc Poll-with-deadline helpers for tests: wait for a condition that another
%% process (a sink, a pool, a hook) makes true, never for a fixed time.
-module(ep_wait).

-export([until/2, until/3, for/3, for/4, value/3, value/4]).

-define(INTERVAL_MS, 10).

%% `name' and any other keys are reported in the timeout error.
-type opts() :: #{name => term(), interval => pos_integer(), atom() => term()}.
-export_type([opts/0]).

%% @doc Waits until `Fun()' returns `true'; fails with `{wait_timeout, ...}'.
-spec until(fun(() -> boolean()), timeout()) -> ok.
until(Fun, TimeoutMs) ->
    until(Fun, TimeoutMs, #{}).

-spec until(fun(() -> boolean()), timeout(), opts()) -> ok.
until(Fun, TimeoutMs, Opts) ->
    _ = for(Fun, fun(Result) -> Result =:= true end, TimeoutMs, Opts),
    ok.

%% @doc Polls `Fun()' until `Pred(Value)' holds and returns that value.
-spec for(fun(() -> Value), fun((Value) -> boolean()), timeout()) -> Value.
for(Fun, Pred, TimeoutMs) ->
    for(Fun, Pred, TimeoutMs, #{}).

-spec for(fun(() -> Value), fun((Value) -> boolean()), timeout(), opts()) -> Value.
for(Fun, Pred, TimeoutMs, Opts) ->
    Deadline = erlang:monotonic_time(millisecond) + TimeoutMs,
    loop(Fun, Pred, Deadline, Opts).

%% @doc Polls `Fun()' until it returns `Expected' (compared with `=:=').
-spec value(fun(() -> Value), Value, timeout()) -> Value.
value(Fun, Expected, TimeoutMs) ->
    value(Fun, Expected, TimeoutMs, #{}).

-spec value(fun(() -> Value), Value, timeout(), opts()) -> Value.
value(Fun, Expected, TimeoutMs, Opts) ->
    for(Fun, fun(V) -> V =:= Expected end, TimeoutMs, Opts#{expected => Expected}).

loop(Fun, Pred, Deadline, Opts) ->
    Value = Fun(),
    case Pred(Value) of
        true ->
            Value;
        false ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true ->
                    error({wait_timeout, maps:merge(Opts, #{last_value => Value})});
                false ->
                    %% A short pause between polls, not a wait for the result.
                    receive after maps:get(interval, Opts, ?INTERVAL_MS) -> ok end,
                    loop(Fun, Pred, Deadline, Opts)
            end
    end.
