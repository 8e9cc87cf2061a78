%% @doc The test host's `mongoose_instrument', with MongooseIM's API.
%%
%% Events are declared with `set_up/1,3' (gen_mod does it from a module's
%% `instrumentation/1') and emitted with `execute/3' or `span/4,5,6'. As in
%% MongooseIM, declaring an event twice or with other label keys fails, and
%% emitting an undeclared event raises `#{what := event_not_registered}'.
%%
%% MongooseIM passes measurements to handler modules (its default config:
%% prometheus and log); the test host does the same work, so that benchmarks
%% pay what an event costs in a real node: every measurement of a declared
%% metric updates a metric in an ETS table as prometheus does (a counter per
%% spiral/counter, count, sum and bucket for a histogram), and a log handler
%% checks its level (debug) for a report. On top, the recorder that
%% `instrument_helper' turns on for the events a test declares. Probes
%% (`probe' in the config) are accepted but never run.
%%
%% The host starts itself: declaring events or recording starts ejabberd_sup
%% (and this server under it) if needed. A test may also start its own
%% server with `start_link/0', as MongooseIM's unit tests do.
-module(mongoose_instrument).

-behaviour(gen_server).

%% MongooseIM's API
-export([start_link/0, persist/0,
         set_up/1, set_up/3, tear_down/1, tear_down/2,
         span/4, span/5, span/6, execute/3]).

%% Recording, for instrument_helper only (test host extension)
-export([start_recording/1, stop_recording/0, recorded/2, recorded_since/3,
         recorded_keys/0, timestamp/0]).

-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-include_lib("kernel/include/logger.hrl").

-type event_name() :: atom().
-type labels() :: #{host_type => mongooseim:host_type(),
                    pool_tag => atom(),
                    pool_type => atom(),
                    atom() => term()}.
-type label_key() :: atom().
-type label_value() :: term().
-type metric_name() :: atom().
-type metric_type() :: gauge | counter | spiral | histogram.
-type metrics() :: #{metric_name() => metric_type()}.
-type measurements() :: #{atom() => term()}.
-type probe_config() :: #{module := module(), interval => pos_integer(), extra => map()}.
-type config() :: #{metrics => metrics(), loglevel => logger:level(),
                    probe => probe_config()}.
-type spec() :: {event_name(), labels(), config()}.
-type execution_time() :: integer().
-type measure_fun(Result) :: fun((execution_time(), Result) -> measurements()).

-export_type([event_name/0, labels/0, label_key/0, label_value/0, config/0,
              measurements/0, spec/0, metrics/0, metric_name/0, metric_type/0,
              probe_config/0]).

%% {{EventName, Labels}, Config, Recorded :: boolean()}
-define(REGISTRY, mongoose_instrument_registry).
%% ordered_set of {{{EventName, Labels}, Seq}, Measurements, Timestamp}
-define(RECORDED, mongoose_instrument_recorded).
%% {{EventName, MetricName, LabelValues}, Value...}: the metrics handler's.
-define(METRICS, mongoose_instrument_metrics).
%% Prometheus' default histogram buckets, as MongooseIM's handler uses them.
-define(BUCKETS, [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]).

-type state() :: #{declared := [{event_name(), labels()}] | off}.

%%--------------------------------------------------------------------
%% API
%%--------------------------------------------------------------------

%% @doc Starts the server linked to the caller; one started by the host's
%% supervisor is stopped first (its declared events go with it).
-spec start_link() -> gen_server:start_ret().
start_link() ->
    ok = ejabberd_sup:release_child(?MODULE),
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc A no-op here: lookups always read the shared ETS table.
-spec persist() -> ok.
persist() ->
    ok.

-spec set_up([spec()]) -> ok.
set_up(Specs) ->
    _ = [ok = set_up(Event, Labels, Config) || {Event, Labels, Config} <- Specs],
    ok.

-spec tear_down([spec()]) -> ok.
tear_down(Specs) ->
    _ = [tear_down(Event, Labels) || {Event, Labels, _Config} <- Specs],
    ok.

%% @doc Declares an event; fails if it is declared already, if its label keys
%% differ from those of the same event with other labels, or if a probe has
%% non-gauge metrics.
-spec set_up(event_name(), labels(), config()) -> ok.
set_up(Event, Labels, Config) when is_atom(Event), is_map(Labels), is_map(Config) ->
    ok_or_raise(call({set_up, Event, Labels, Config})).

%% The server answers with the error; the caller is the one to crash.
-spec ok_or_raise(ok | {error, map()}) -> ok.
ok_or_raise(ok) -> ok;
ok_or_raise({error, ErrorMap}) -> error(ErrorMap).

%% @doc Idempotent; a no-op when the server does not run (a new one would
%% have no events either).
-spec tear_down(event_name(), labels()) -> ok.
tear_down(Event, Labels) ->
    case whereis(?MODULE) of
        undefined -> ok;
        _ -> gen_server:call(?MODULE, {tear_down, Event, Labels})
    end.

-spec span(event_name(), labels(), fun(() -> Result), measure_fun(Result)) -> Result.
span(Event, Labels, F, MeasureF) ->
    timed(Event, Labels, F, MeasureF).

%% @doc Runs `F(Args...)', timing it in microseconds, and emits
%% `MeasureF(Time, Result)'. Fails before running F if the event is unknown.
-spec span(event_name(), labels(), fun((...) -> Result), list(), measure_fun(Result)) -> Result.
span(Event, Labels, F, Args, MeasureF) ->
    timed(Event, Labels, fun() -> apply(F, Args) end, MeasureF).

-spec span(event_name(), labels(), module(), atom(), list(), measure_fun(Result)) -> Result.
span(Event, Labels, Mod, F, Args, MeasureF) ->
    timed(Event, Labels, fun() -> apply(Mod, F, Args) end, MeasureF).

%% The event is looked up before the work runs, so an unknown one fails
%% without side effects; the time is in microseconds.
-spec timed(event_name(), labels(), fun(() -> Result), measure_fun(Result)) -> Result.
timed(Event, Labels, Work, MeasureF) ->
    Handlers = lookup(Event, Labels),
    Started = erlang:monotonic_time(microsecond),
    Result = Work(),
    Elapsed = erlang:monotonic_time(microsecond) - Started,
    emit(Event, Labels, MeasureF(Elapsed, Result), Handlers),
    Result.

-spec execute(event_name(), labels(), measurements()) -> ok.
execute(Event, Labels, Measurements) ->
    emit(Event, Labels, Measurements, lookup(Event, Labels)).

%%--------------------------------------------------------------------
%% Recording (test host extension, used by instrument_helper)
%%--------------------------------------------------------------------

%% @doc Records every later emission of the listed events (declared now or
%% later), dropping what was recorded before.
-spec start_recording([{event_name(), labels()}]) -> ok.
start_recording(Declared) when is_list(Declared) ->
    call({start_recording, Declared}).

%% @doc A no-op when the server does not run (nothing is recorded).
-spec stop_recording() -> ok.
stop_recording() ->
    case whereis(?MODULE) of
        undefined -> ok;
        _ -> gen_server:call(?MODULE, stop_recording)
    end.

%% @doc Recorded measurements of an event, oldest first.
-spec recorded(event_name(), labels()) -> [measurements()].
recorded(Event, Labels) ->
    select([{{{{Event, Labels}, '_'}, '$1', '_'}, [], ['$1']}]).

%% @doc Like recorded/2, for emissions at or after `timestamp()' value `Since'.
-spec recorded_since(event_name(), labels(), integer()) -> [measurements()].
recorded_since(Event, Labels, Since) ->
    select([{{{{Event, Labels}, '_'}, '$1', '$2'}, [{'>=', '$2', Since}], ['$1']}]).

%% @doc The `{Event, Labels}' keys with at least one recorded emission.
-spec recorded_keys() -> [{event_name(), labels()}].
recorded_keys() ->
    lists:usort(select([{{{'$1', '_'}, '_', '_'}, [], ['$1']}])).

-spec timestamp() -> integer().
timestamp() ->
    erlang:monotonic_time().

%%--------------------------------------------------------------------
%% gen_server callbacks
%%--------------------------------------------------------------------

-spec init([]) -> {ok, state()}.
init([]) ->
    ets:new(?REGISTRY, [named_table, protected, {read_concurrency, true}]),
    ets:new(?METRICS, [named_table, public, {write_concurrency, true}]),
    {ok, #{declared => off}}.

-spec handle_call(term(), gen_server:from(), state()) -> {reply, term(), state()}.
handle_call({set_up, Event, Labels, Config}, _From, #{declared := Declared} = State) ->
    case check_set_up(Event, Labels, Config) of
        ok ->
            ets:insert(?REGISTRY, {{Event, Labels}, Config, is_declared(Event, Labels, Declared)}),
            {reply, ok, State};
        {error, _} = Error ->
            {reply, Error, State}
    end;
handle_call({tear_down, Event, Labels}, _From, State) ->
    ets:delete(?REGISTRY, {Event, Labels}),
    {reply, ok, State};
handle_call({start_recording, Declared}, _From, State) ->
    reset_recorded_table(),
    set_recorded_flags(Declared),
    {reply, ok, State#{declared := Declared}};
handle_call(stop_recording, _From, State) ->
    set_recorded_flags(off),
    delete_recorded_table(),
    {reply, ok, State#{declared := off}};
handle_call(Request, From, State) ->
    ?LOG_WARNING(#{what => unexpected_call, msg => Request, call_from => From}),
    {reply, {error, #{what => unexpected_call, request => Request}}, State}.

-spec handle_cast(term(), state()) -> {noreply, state()}.
handle_cast(Msg, State) ->
    ?LOG_WARNING(#{what => unexpected_cast, msg => Msg}),
    {noreply, State}.

-spec handle_info(term(), state()) -> {noreply, state()}.
handle_info(Info, State) ->
    ?LOG_WARNING(#{what => unexpected_info, msg => Info}),
    {noreply, State}.

-spec terminate(term(), state()) -> ok.
terminate(_Reason, _State) ->
    ok.

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec call(term()) -> term().
call(Request) ->
    mim_host_lib:call(?MODULE, Request).

%% The hot path: one lookup in the registry.
-spec lookup(event_name(), labels()) -> {config(), boolean()}.
lookup(Event, Labels) ->
    try ets:lookup(?REGISTRY, {Event, Labels}) of
        [{_, Config, Recorded}] -> {Config, Recorded};
        [] -> error(#{what => event_not_registered, event_name => Event, labels => Labels})
    catch
        error:badarg ->
            error(#{what => event_not_registered, event_name => Event, labels => Labels})
    end.

-spec emit(event_name(), labels(), measurements(), {config(), boolean()}) -> ok.
emit(Event, Labels, Measurements, {Config, Recorded}) ->
    handle_metrics(Event, Labels, Config, Measurements),
    handle_log(Event, Labels, Measurements),
    record(Event, Labels, Measurements, Recorded).

%% MongooseIM's prometheus handler: each declared metric present in the
%% measurements updates its series (labels as a list of values).
-spec handle_metrics(event_name(), labels(), config(), measurements()) -> ok.
handle_metrics(Event, Labels, #{metrics := Metrics}, Measurements) ->
    LabelValues = maps:values(Labels),
    maps:foreach(fun(Name, Type) ->
                         case Measurements of
                             #{Name := Value} -> update_metric({Event, Name, LabelValues},
                                                               Type, Value);
                             #{} -> ok
                         end
                 end, Metrics);
handle_metrics(_Event, _Labels, _Config, _Measurements) ->
    ok.

-spec update_metric(tuple(), metric_type(), term()) -> ok.
update_metric(Key, gauge, Value) when is_integer(Value) ->
    _ = ets:insert(?METRICS, {Key, Value}), ok;
update_metric(Key, histogram, Value) when is_integer(Value) ->
    Bucket = length(lists:takewhile(fun(B) -> Value > B end, ?BUCKETS)),
    _ = ets:update_counter(?METRICS, Key, [{2, 1}, {3, Value}],
                           {Key, 0, 0}),
    _ = ets:update_counter(?METRICS, {Key, Bucket}, {2, 1}, {{Key, Bucket}, 0}),
    ok;
update_metric(Key, _CounterOrSpiral, Value) when is_integer(Value) ->
    _ = ets:update_counter(?METRICS, Key, {2, Value}, {Key, 0}), ok;
update_metric(_Key, _Type, _Value) ->
    ok.

%% MongooseIM's log handler: the event as a report at level debug, which
%% the node's level (warning) filters out.
-spec handle_log(event_name(), labels(), measurements()) -> ok.
handle_log(Event, Labels, Measurements) ->
    ?LOG_DEBUG(#{what => Event, labels => Labels, measurements => Measurements}).

-spec record(event_name(), labels(), measurements(), boolean()) -> ok.
record(_Event, _Labels, _Measurements, false) ->
    ok;
record(Event, Labels, Measurements, true) ->
    Key = {{Event, Labels}, erlang:unique_integer([monotonic])},
    %% the table may be gone if recording stopped since the lookup
    try ets:insert(?RECORDED, {Key, Measurements, timestamp()}) of
        true -> ok
    catch
        error:badarg -> ok
    end.

-spec check_set_up(event_name(), labels(), config()) -> ok | {error, map()}.
check_set_up(Event, Labels, Config) ->
    Existing = ets:match(?REGISTRY, {{Event, '$1'}, '_', '_'}),
    LabelKeys = lists:sort(maps:keys(Labels)),
    case {lists:member([Labels], Existing), Existing} of
        {true, _} ->
            {error, #{what => event_already_registered, event_name => Event, labels => Labels}};
        {false, [[Other] | _]} ->
            case lists:sort(maps:keys(Other)) of
                LabelKeys -> check_probe_metrics(Event, Labels, Config);
                OtherKeys -> {error, #{what => inconsistent_labels, event_name => Event,
                                       labels => Labels, existing_label_keys => OtherKeys}}
            end;
        {false, []} ->
            check_probe_metrics(Event, Labels, Config)
    end.

-spec check_probe_metrics(event_name(), labels(), config()) -> ok | {error, map()}.
check_probe_metrics(Event, Labels, #{probe := _, metrics := Metrics}) ->
    case maps:filter(fun(_Name, Type) -> Type =/= gauge end, Metrics) of
        Improper when map_size(Improper) =:= 0 ->
            ok;
        Improper ->
            {error, #{what => non_gauge_metrics_in_probe, event_name => Event,
                      labels => Labels, improper_metrics => Improper}}
    end;
check_probe_metrics(_Event, _Labels, _Config) ->
    ok.

-spec is_declared(event_name(), labels(), [{event_name(), labels()}] | off) -> boolean().
is_declared(_Event, _Labels, off) ->
    false;
is_declared(Event, Labels, Declared) ->
    lists:member({Event, Labels}, Declared).

-spec set_recorded_flags([{event_name(), labels()}] | off) -> ok.
set_recorded_flags(Declared) ->
    lists:foreach(fun({{Event, Labels} = Key, _Config, _}) ->
                          ets:update_element(?REGISTRY, Key,
                                             {3, is_declared(Event, Labels, Declared)})
                  end, ets:tab2list(?REGISTRY)).

-spec reset_recorded_table() -> ok.
reset_recorded_table() ->
    delete_recorded_table(),
    ets:new(?RECORDED, [named_table, public, ordered_set, {write_concurrency, true}]),
    ok.

-spec delete_recorded_table() -> ok.
delete_recorded_table() ->
    case ets:whereis(?RECORDED) of
        undefined -> ok;
        _ -> ets:delete(?RECORDED), ok
    end.

-spec select(ets:match_spec()) -> [term()].
select(MatchSpec) ->
    case ets:whereis(?RECORDED) of
        undefined -> [];
        _ -> ets:select(?RECORDED, MatchSpec)
    end.
