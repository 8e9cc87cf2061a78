%% @doc The Rust SNS pool of one host type, as `mod_event_pusher_sns' uses it:
%% started and stopped with the module, fed notifications by the hook, and
%% reporting what became of them.
%%
%% SNS takes its connection options from the module, not from
%% `outgoing_pools', so each host type has its own pool, owned by a
%% `mongoose_event_pusher_pool_owner' process under `mongoose_event_pusher_sup'.
%% The owner's child spec names only the host type: the options (with the
%% secret key) are read when the pool starts, so supervisor reports never
%% carry them.
-module(mod_event_pusher_sns_pool).

-include("mongoose.hrl").

%% Lifecycle (mod_event_pusher_sns)
-export([start/1, stop/1, metric/0]).

%% The pool owner's start function (mongoose_event_pusher_pool_owner)
-export([start_pool/2]).

%% Hot path (mod_event_pusher_sns)
-export([publish/5, count_dropped/1]).

%% Results (called by mongoose_event_pusher_pool_owner)
-export([handle_pool_result/2]).

%% Inspection
-export([stats/1, endpoint/1]).

%% Context of one notification, carried by the Rust pool with it.
-type ctx() :: #{host_type := mongooseim:host_type(), topic_arn := binary()}.
-type outcome() :: {published, TimeUs :: non_neg_integer(), Payload :: binary()}
                 | {error, Reason :: binary(), TimeUs :: non_neg_integer()}
                 | {dropped, atom()}.
-type attribute() :: {Name :: binary(), {string | binary | number, binary()}}.
-export_type([ctx/0, outcome/0, attribute/0]).

-define(METRIC, mod_event_pusher_sns_published).
%% The pool's tag in its key (MongooseIM names its SNS worker pool so).
-define(POOL_TAG, pusher_sns).
%% Notifications the Rust queue holds before a publish is refused as
%% overloaded: a few hundred bytes each, so tens of MB at most.
-define(QUEUE_CAPACITY, 65536).
%% The owner's process dictionary: the pool's `requests' counter as last
%% reported, to emit the increase.
-define(REQUESTS_SEEN, {?MODULE, requests_seen}).

%%--------------------------------------------------------------------
%% Lifecycle
%%--------------------------------------------------------------------

%% @doc Starts the pool owner for HostType; raises, naming the host type and
%% the reason (never the options), if the pool does not start.
-spec start(mongooseim:host_type()) -> ok.
start(HostType) ->
    ok = mongoose_event_pusher_sup:ensure_started(),
    ChildSpec = child_spec(HostType),
    Result = case supervisor:start_child(mongoose_event_pusher_sup, ChildSpec) of
                 {error, already_present} ->
                     %% Left behind by an owner that failed to restart.
                     _ = supervisor:delete_child(mongoose_event_pusher_sup, maps:get(id, ChildSpec)),
                     supervisor:start_child(mongoose_event_pusher_sup, ChildSpec);
                 Other ->
                     Other
             end,
    case Result of
        {ok, _Pid} ->
            ok;
        {error, Reason} ->
            error(#{what => event_pusher_sns_pool_start_failed, host_type => HostType,
                    reason => unwrap_start_error(Reason)})
    end.

%% @doc Stops the owner, which drains the pool (bounded) and closes it.
-spec stop(mongooseim:host_type()) -> ok.
stop(HostType) ->
    case whereis(mongoose_event_pusher_sup) of
        undefined ->
            ok;
        _Pid ->
            #{id := Id} = child_spec(HostType),
            _ = supervisor:terminate_child(mongoose_event_pusher_sup, Id),
            _ = supervisor:delete_child(mongoose_event_pusher_sup, Id),
            ok
    end.

%% @doc The instrumentation event this backend emits.
-spec metric() -> mongoose_instrument:event_name().
metric() ->
    ?METRIC.

%% @doc Called by the owner (its pid first): builds the NIF's configuration
%% from the module options and starts the Rust pool. An exception is turned
%% into an error without its stacktrace, whose arguments hold the secret key.
-spec start_pool(pid(), mongooseim:host_type()) -> {ok, reference()} | {error, term()}.
start_pool(Owner, HostType) ->
    try
        Config = nif_config(gen_mod:get_loaded_module_opts(HostType, mod_event_pusher_sns)),
        mongoose_event_pusher_nif:sns_pool_start(Owner, Config)
    catch
        Class:Reason ->
            {error, #{what => sns_pool_start_crashed, class => Class, reason => Reason}}
    end.

%% @doc The endpoint URL for `sns_host': a bare host means HTTPS on its
%% default port, as in MongooseIM; (ours) a URL with `http://' or
%% `https://' is used as given.
-spec endpoint(string()) -> binary().
endpoint(SnsHost) ->
    Host = unicode:characters_to_binary(SnsHost),
    case string:lowercase(Host) of
        <<"http://", _/binary>> -> Host;
        <<"https://", _/binary>> -> Host;
        _ -> <<"https://", Host/binary>>
    end.

%%--------------------------------------------------------------------
%% Hot path
%%--------------------------------------------------------------------

%% @doc Queues one notification in HostType's pool and returns at once. A
%% notification the pool does not take (overloaded, closed, not started) is
%% logged and counted as dropped.
-spec publish(mongooseim:host_type(), mod_event_pusher_sns:topic_arn(), map(),
              mod_event_pusher:metadata(), mod_event_pusher_sns:attributes()) -> ok.
publish(HostType, TopicARN, Fields, Metadata, Attributes) ->
    ArnBin = unicode:characters_to_binary(TopicARN),
    Ctx = #{host_type => HostType, topic_arn => ArnBin},
    case mongoose_event_pusher_pool_owner:get_ref(key(HostType)) of
        undefined ->
            dropped(Ctx, pool_not_started);
        Pool ->
            Job = {{?MODULE, Ctx}, ArnBin, Fields, Metadata, encode_attributes(Ctx, Attributes)},
            case mongoose_event_pusher_nif:sns_publish(Pool, Job) of
                ok -> ok;
                {error, Reason} -> dropped(Ctx, Reason)
            end
    end.

%% @doc Counts a notification given up before it reached the pool (the
%% caller logged why).
-spec count_dropped(mongooseim:host_type()) -> ok.
count_dropped(HostType) ->
    execute(HostType, #{dropped => 1}).

%%--------------------------------------------------------------------
%% Results
%%--------------------------------------------------------------------

%% @doc Reports one outcome of a notification: accepted by SNS, one failed
%% attempt (retried in Rust while retries remain), or given up.
-spec handle_pool_result(ctx(), outcome()) -> ok.
handle_pool_result(#{host_type := HostType}, {published, TimeUs, _Payload}) ->
    execute(HostType, #{count => 1, time => TimeUs}),
    report_requests(HostType);
handle_pool_result(Ctx = #{host_type := HostType}, {error, Reason, _TimeUs}) ->
    ?LOG_WARNING((log_meta(Ctx))#{what => sns_publish_failed, reason => Reason,
                                  text => <<"An SNS publish attempt failed">>}),
    execute(HostType, #{failed => 1}),
    report_requests(HostType);
handle_pool_result(Ctx, {dropped, Reason}) ->
    dropped(Ctx, Reason).

%% @doc The counters of HostType's pool (the NIF's, plus `requests').
-spec stats(mongooseim:host_type()) -> {ok, map()} | {error, not_started}.
stats(HostType) ->
    mongoose_event_pusher_pool_owner:stats(key(HostType)).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec key(mongooseim:host_type()) -> mongoose_event_pusher_pool_owner:key().
key(HostType) ->
    {sns, HostType, ?POOL_TAG}.

-spec child_spec(mongooseim:host_type()) -> supervisor:child_spec().
child_spec(HostType) ->
    mongoose_event_pusher_pool_owner:child_spec(key(HostType), {?MODULE, start_pool, [HostType]}).

%% supervisor:start_child/2 wraps the owner's stop reason with the child.
-spec unwrap_start_error(term()) -> term().
unwrap_start_error({{pool_start_failed, Reason}, _Child}) -> Reason;
unwrap_start_error({pool_start_failed, Reason}) -> Reason;
unwrap_start_error(Reason) -> Reason.

-spec nif_config(gen_mod:module_opts()) -> map().
nif_config(#{sns_host := SnsHost, region := Region, access_key_id := AccessKeyId,
             secret_access_key := SecretKey, pool_size := PoolSize,
             publish_retry_count := RetryCount, publish_retry_time_ms := RetryTime} = Opts) ->
    #{endpoint => endpoint(SnsHost),
      region => unicode:characters_to_binary(Region),
      access_key_id => unicode:characters_to_binary(AccessKeyId),
      secret_access_key => unicode:characters_to_binary(SecretKey),
      pool_size => PoolSize,
      retry_count => RetryCount,
      retry_time_ms => RetryTime,
      batching => maps:get(publish_batching, Opts, true),
      queue_capacity => ?QUEUE_CAPACITY}.

%% Attribute values typed as MongooseIM's SNS client (erlcloud) types them:
%% a charlist is a String, a binary a Binary, a number a Number. Anything
%% else is left out with a warning rather than failing the notification.
-spec encode_attributes(ctx(), mod_event_pusher_sns:attributes()) -> [attribute()].
encode_attributes(Ctx, Attributes) ->
    lists:filtermap(fun({Name, Value}) -> encode_attribute(Ctx, Name, Value) end,
                    lists:sort(maps:to_list(Attributes))).

-spec encode_attribute(ctx(), term(), term()) -> {true, attribute()} | false.
encode_attribute(Ctx, Name, Value) ->
    case {text(Name), typed_value(Value)} of
        {NameBin, {_Type, _Bin} = Typed} when is_binary(NameBin) ->
            {true, {NameBin, Typed}};
        _ ->
            ?LOG_WARNING((log_meta(Ctx))#{what => sns_message_attribute_invalid,
                                          name => Name, value => Value,
                                          text => <<"The plugin's message attribute is left out: "
                                                    "names are strings, values strings, "
                                                    "binaries or numbers">>}),
            false
    end.

-spec typed_value(term()) -> {string | binary | number, binary()} | error.
typed_value(Value) when is_binary(Value) ->
    {binary, Value};
typed_value(Value) when is_integer(Value) ->
    {number, integer_to_binary(Value)};
typed_value(Value) when is_float(Value) ->
    {number, float_to_binary(Value, [short])};
typed_value(Value) when is_list(Value) ->
    case text(Value) of
        Bin when is_binary(Bin) -> {string, Bin};
        error -> error
    end;
typed_value(_Value) ->
    error.

-spec text(term()) -> binary() | error.
text(Bin) when is_binary(Bin) ->
    Bin;
text(List) when is_list(List) ->
    try unicode:characters_to_binary(List) of
        Bin when is_binary(Bin) -> Bin;
        _ -> error
    catch
        error:badarg -> error
    end;
text(_) ->
    error.

-spec dropped(ctx(), atom()) -> ok.
dropped(Ctx = #{host_type := HostType}, Reason) ->
    ?LOG_WARNING((log_meta(Ctx))#{what => sns_notification_dropped, reason => Reason,
                                  text => <<"mod_event_pusher_sns gave up a notification">>}),
    count_dropped(HostType).

-spec log_meta(ctx()) -> map().
log_meta(#{host_type := HostType, topic_arn := TopicARN}) ->
    #{host_type => HostType, topic_arn => TopicARN}.

%% Runs in the owner process: the pool's request counter is read as results
%% arrive (every request ends in at least one result) and its increase
%% emitted, so `requests' needs no message of its own from Rust.
-spec report_requests(mongooseim:host_type()) -> ok.
report_requests(HostType) ->
    case stats(HostType) of
        {ok, Stats} ->
            Requests = maps:get(requests, Stats, 0),
            Seen = case get(?REQUESTS_SEEN) of
                       undefined -> 0;
                       N -> N
                   end,
            case Requests > Seen of
                true ->
                    put(?REQUESTS_SEEN, Requests),
                    execute(HostType, #{requests => Requests - Seen});
                false ->
                    ok
            end;
        {error, not_started} ->
            ok
    end.

%% A late result, after the module stopped on this host type, finds its event
%% gone; there is nothing left to count it in.
-spec execute(mongooseim:host_type(), map()) -> ok.
execute(HostType, Measurements) ->
    try
        mongoose_instrument:execute(?METRIC, #{host_type => HostType}, Measurements)
    catch
        error:#{what := event_not_registered} -> ok
    end.
