%% @doc The log of dropped events, for every backend: per pool, `what' and
%% reason, at most two lines a second (the first drop with its details, then
%% how many followed it in that second), never one line per event.
%%
%% Under overload (a broker down, a full queue) every event is dropped, and
%% a line per event made the user's processes format log lines instead of
%% routing messages, while the logger discarded most of them anyway. The
%% counters that matter (pool stats, instrumentation events) stay exact:
%% they are not this module's.
%%
%% log/3 costs the caller one ETS counter update; the first drop of a key
%% in an interval is also logged at once, by the caller, as before. This
%% process writes the count of the others every interval (and at its stop)
%% and forgets the key, so its next drop is logged at once again. When it
%% does not run (no pool was ever started), every drop is logged.
-module(mongoose_event_pusher_drop_log).

-behaviour(gen_server).

-include_lib("kernel/include/logger.hrl").

-export([log/3, flush/0, start_link/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-type level() :: warning | error.
%% What one line is about: the pool (as the backend names it), `what' and
%% the reason.
-type key() :: {term(), atom(), term()}.

-define(TABLE, ?MODULE).
-define(INTERVAL_MS, 1000).

%%--------------------------------------------------------------------
%% API
%%--------------------------------------------------------------------

%% @doc Counts a dropped event of Pool and logs Report (with `what' and
%% `reason') at Level if it is the first of its pool, `what' and reason in
%% this interval; the next ones are counted in one line at its end.
-spec log(level(), term(), #{what := atom(), atom() => term()}) -> ok.
log(Level, Pool, Report = #{what := What}) ->
    Key = {Pool, What, maps:get(reason, Report, undefined)},
    %% {Key, Level, Dropped, Logged, FirstReport}: drops since the key was
    %% made, and how many of them a line has counted (the first, at once).
    try ets:update_counter(?TABLE, Key, {3, 1}, {Key, Level, 0, 1, Report}) of
        1 -> logger:log(Level, Report, #{mfa => {?MODULE, log, 3}});
        _ -> ok
    catch
        error:badarg ->
            %% No table: this process is not running.
            logger:log(Level, Report, #{mfa => {?MODULE, log, 3}})
    end.

%% @doc Writes the pending lines now (for tests and for a stop).
-spec flush() -> ok.
flush() ->
    case whereis(?MODULE) of
        undefined -> ok;
        _ -> gen_server:call(?MODULE, flush)
    end.

-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%%--------------------------------------------------------------------
%% gen_server callbacks
%%--------------------------------------------------------------------

-spec init([]) -> {ok, reference()}.
init([]) ->
    process_flag(trap_exit, true),
    _ = ets:new(?TABLE, [named_table, public, set, {write_concurrency, true},
                         {decentralized_counters, true}]),
    {ok, schedule()}.

-spec handle_call(term(), gen_server:from(), reference()) -> {reply, term(), reference()}.
handle_call(flush, _From, Timer) ->
    write_lines(),
    {reply, ok, Timer};
handle_call(_Request, _From, Timer) ->
    {reply, {error, unknown_call}, Timer}.

-spec handle_cast(term(), reference()) -> {noreply, reference()}.
handle_cast(_Msg, Timer) ->
    {noreply, Timer}.

-spec handle_info(term(), reference()) -> {noreply, reference()}.
handle_info(flush, _Timer) ->
    write_lines(),
    {noreply, schedule()};
handle_info(_Msg, Timer) ->
    {noreply, Timer}.

-spec terminate(term(), reference()) -> ok.
terminate(_Reason, _Timer) ->
    write_lines().

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec schedule() -> reference().
schedule() ->
    erlang:send_after(?INTERVAL_MS, self(), flush).

%% One line per key with drops not counted by a line yet; only this process
%% writes `Logged', callers only add to `Dropped', so every drop is in
%% exactly one line. A key with nothing new is forgotten (unless a drop
%% comes in at that moment), so its next drop is logged with its details.
-spec write_lines() -> ok.
write_lines() ->
    lists:foreach(fun write_line/1, ets:tab2list(?TABLE)).

-spec write_line({key(), level(), pos_integer(), pos_integer(), map()}) -> ok.
write_line({Key, _Level, Dropped, Dropped, _Report}) ->
    _ = ets:select_delete(?TABLE, [{{Key, '_', Dropped, '_', '_'}, [], [true]}]),
    ok;
write_line({Key, Level, Dropped, Logged, Report}) ->
    logger:log(Level, Report#{dropped_after_it => Dropped - Logged,
                              interval_ms => ?INTERVAL_MS,
                              text => <<"More events were dropped for the same pool "
                                        "and reason after the one logged first">>},
               #{mfa => {?MODULE, log, 3}}),
    true = ets:update_element(?TABLE, Key, {4, Dropped}),
    ok.
