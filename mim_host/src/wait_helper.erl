%% @doc MongooseIM's test polling helper (the `wait_helper' package its
%% suites use): calls a function until its result is the expected value (or
%% one a validator accepts), or the time is up.
%%
%% `wait_until(Fun, Expected, Opts)' returns `{ok, Value}'. When the time is
%% up it raises `error({Name, Expected, History, OnErrorResult})', or returns
%% `{error, That}' with `no_throw => true'. History lists the results seen,
%% oldest first, as `{times, Count, Result}' (equal consecutive results
%% counted once); an exception from `Fun' is a result `{Class, Reason,
%% Stacktrace}' and polling goes on. Options (defaults): `time_left' (5000
%% ms, or `infinity'), `sleep_time' (100 ms between calls), `validator' (equal
%% to Expected), `expected_value' (Expected, as reported), `name' (`timeout'),
%% `on_error' (a fun/0 run once on failure), `no_throw' (false).
%%
%% Ours: the time left is measured on the monotonic clock (time spent in
%% `Fun' counts), and `Fun' runs once more at the deadline.
-module(wait_helper).

-export([wait_until/2, wait_until/3]).

-type name() :: atom().
-type history() :: [{times, pos_integer(), term()}].
-type wait_error(Expected) :: {name(), Expected, history(), term()}.
-type opts(Expected) :: #{validator => fun((term()) -> boolean()),
                          expected_value => Expected,
                          time_left => timeout(),
                          sleep_time => non_neg_integer(),
                          on_error => fun(() -> term()),
                          no_throw => boolean(),
                          name => name()}.
-type return(Expected) :: {ok, Expected | term()} | {error, wait_error(Expected)}.

-export_type([name/0, history/0, wait_error/1, opts/1, return/1]).

-define(DEFAULT_TIME_LEFT, 5000).
-define(DEFAULT_SLEEP_TIME, 100).

%% @doc `wait_until(Fun, Expected, #{})'.
-spec wait_until(fun(() -> Expected | term()), Expected) -> return(Expected).
wait_until(Fun, Expected) ->
    wait_until(Fun, Expected, #{}).

-spec wait_until(fun(() -> Expected | term()), Expected, opts(Expected)) -> return(Expected).
wait_until(Fun, Expected, Opts) when is_function(Fun, 0), is_map(Opts) ->
    Defaults = #{validator => fun(Value) -> Value =:= Expected end,
                 expected_value => Expected,
                 time_left => ?DEFAULT_TIME_LEFT,
                 sleep_time => ?DEFAULT_SLEEP_TIME,
                 on_error => fun() -> undefined end,
                 no_throw => false,
                 name => timeout},
    Full = maps:merge(Defaults, Opts),
    poll(Fun, Full, deadline(maps:get(time_left, Full)), []).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec poll(fun(() -> term()), map(), integer() | infinity, history()) -> return(term()).
poll(Fun, #{validator := Validator, sleep_time := SleepTime} = Opts, Deadline, History) ->
    {Accepted, Result} = try Fun() of
                             Value -> {Validator(Value) =:= true, Value}
                         catch
                             Class:Reason:Stacktrace -> {false, {Class, Reason, Stacktrace}}
                         end,
    case Accepted of
        true ->
            {ok, Result};
        false ->
            NewHistory = add_to_history(Result, History),
            case time_left(Deadline) of
                0 ->
                    give_up(Opts, lists:reverse(NewHistory));
                Left ->
                    %% the pause between two polls, never longer than the time left
                    timer:sleep(min(SleepTime, Left)),
                    poll(Fun, Opts, Deadline, NewHistory)
            end
    end.

-spec give_up(map(), history()) -> {error, wait_error(term())}.
give_up(#{name := Name, expected_value := Expected, on_error := OnError,
          no_throw := NoThrow}, History) ->
    Error = {Name, Expected, History, OnError()},
    case NoThrow of
        true -> {error, Error};
        false -> erlang:error(Error)
    end.

-spec add_to_history(term(), history()) -> history().
add_to_history(Result, [{times, Count, Result} | Rest]) ->
    [{times, Count + 1, Result} | Rest];
add_to_history(Result, History) ->
    [{times, 1, Result} | History].

-spec deadline(timeout()) -> integer() | infinity.
deadline(infinity) ->
    infinity;
deadline(TimeLeft) when is_integer(TimeLeft) ->
    erlang:monotonic_time(millisecond) + max(0, TimeLeft).

-spec time_left(integer() | infinity) -> non_neg_integer() | infinity.
time_left(infinity) ->
    infinity;
time_left(Deadline) ->
    max(0, Deadline - erlang:monotonic_time(millisecond)).
