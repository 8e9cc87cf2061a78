%% @doc Turns a pool's configuration into the configuration map the NIF's
%% pool start functions take: an `outgoing_pools' entry, as MongooseIM's
%% config spec produces it, or (SNS, which has no outgoing pool type) the
%% options of `mod_event_pusher_sns' on a host type.
-module(mongoose_event_pusher_nif_config).

-export([start_spec/1, start_spec/2, queue_capacity/1, tls/1]).

%% SNS
-export([sns_pool_start/2, endpoint/1]).

-export_type([pool_entry/0, source/0, start_spec/0]).

-include("mongoose.hrl").

%% One element of `mongoose_config:get_opt(outgoing_pools)'.
-type pool_entry() :: #{type := atom(), scope := term(), tag := atom(),
                        opts := map(), conn_opts := map()}.
%% Where a pool's options come from.
-type source() :: pool_entry() | {module_opts, mod_event_pusher_sns}.
%% How a pool owner starts its Rust pool: the NIF function, called with the
%% owner's pid prepended to Args.
-type start_spec() :: {module(), atom(), Args :: [term()]}.

%% Queue length when `max_worker_queue_len' is not set: large enough to absorb
%% bursts, small enough to bound memory (a request is a few hundred bytes).
-define(DEFAULT_QUEUE_CAPACITY, 65536).
%% How long a publish may wait for the broker's confirm before it counts as
%% timed out: amqp_client's wait_for_confirms default, which MongooseIM uses.
-define(RABBIT_CONFIRM_TIMEOUT_MS, 60000).
%% Notifications the Rust SNS queue holds before a publish is refused as
%% overloaded: a few hundred bytes each, so tens of MB at most.
-define(SNS_QUEUE_CAPACITY, 65536).

%% @doc The NIF call that starts a pool for this entry.
-spec start_spec(pool_entry()) -> {ok, start_spec()} | {error, term()}.
start_spec(#{type := http} = Entry) ->
    {ok, {mongoose_event_pusher_nif, http_pool_start, [http(Entry)]}};
start_spec(#{type := Type, tag := Tag}) ->
    {error, #{what => event_pusher_pool_type_unsupported, pool_type => Type, pool_tag => Tag}}.

%% @doc The NIF call that starts the pool `Key' (as
%% mongoose_event_pusher_pool_registry names it) from its source. A rabbit
%% pool reports its connections as instrumentation events named after the
%% pool's scope, which the entry alone does not give (scope `host_type'
%% stands for each host type). An SNS pool's options, with the secret key,
%% are read only when the pool starts (sns_pool_start/2), so the owner's
%% child spec, which supervisor reports print, never holds them.
-spec start_spec(mongoose_event_pusher_pool_owner:key(), source()) ->
          {ok, start_spec()} | {error, term()}.
start_spec({http, Scope, Tag}, #{type := http} = Entry) ->
    Config = with_spool([mod_event_pusher_http, mod_push_service_mongoosepush], http,
                        Scope, Tag, http(Entry)),
    {ok, {mongoose_event_pusher_nif, http_pool_start, [Config]}};
start_spec({rabbit, Scope, Tag}, #{type := rabbit} = Entry) ->
    {ok, {mongoose_event_pusher_nif, rabbit_pool_start, [rabbit(Scope, Tag, Entry)]}};
start_spec({sns, HostType, _Tag}, {module_opts, mod_event_pusher_sns}) ->
    {ok, {?MODULE, sns_pool_start, [HostType]}};
start_spec(_Key, Entry) ->
    start_spec(Entry).

%% @doc Called by the owner (its pid first): builds the NIF's configuration
%% from the module options and starts the Rust SNS pool. An exception is
%% turned into an error without its stacktrace, whose arguments hold the
%% secret key.
-spec sns_pool_start(pid(), mongooseim:host_type()) -> {ok, reference()} | {error, term()}.
sns_pool_start(Owner, HostType) ->
    try
        Config = with_spool([mod_event_pusher_sns], sns, HostType, pusher_sns,
                            sns(gen_mod:get_loaded_module_opts(HostType, mod_event_pusher_sns))),
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

%% @doc MongooseIM's `max_worker_queue_len' bounds the queue of each of the
%% `workers'; the Rust pool has one queue feeding all of them, so its capacity
%% is workers x max_worker_queue_len (at least one slot per worker, since 0
%% means "only idle workers" in MongooseIM and we still need somewhere to put
%% the request until a worker takes it).
-spec queue_capacity(map()) -> pos_integer().
queue_capacity(#{max_worker_queue_len := Len} = Opts) when is_integer(Len) ->
    workers(Opts) * max(Len, 1);
queue_capacity(_Opts) ->
    ?DEFAULT_QUEUE_CAPACITY.

%% @doc MongooseIM's TLS section (`connection.tls') as the NIF's tls map.
%% `ciphers' and `crl_files' are accepted by the config but not applied (the
%% Rust TLS stack chooses its own cipher suites); setting them logs a warning.
%% The same section serves http and rabbit pools.
-spec tls(map()) -> map().
tls(TLS) ->
    warn_ignored(TLS),
    maps:from_list(lists:flatmap(fun tls_opt/1, maps:to_list(TLS))).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

%% MongooseIM's HTTP client connects to the scheme, host and port of
%% `connection.host' and sends `path_prefix ++ path' as the request path: any
%% path in `host' is not used. So the URL is the host's origin followed by
%% the prefix (the handler's path is appended per request).
-spec http(pool_entry()) -> map().
http(#{opts := Opts, conn_opts := ConnOpts}) ->
    #{host := Host} = ConnOpts,
    Prefix = maps:get(path_prefix, ConnOpts, <<"/">>),
    Config = #{base_url => <<(origin(to_binary(Host)))/binary, (to_binary(Prefix))/binary>>,
               workers => workers(Opts),
               request_timeout => maps:get(request_timeout, ConnOpts, 2000),
               queue_capacity => queue_capacity(Opts)},
    case ConnOpts of
        #{tls := TLS} -> Config#{tls => tls(TLS)};
        #{} -> Config
    end.

%% MongooseIM's rabbit worker pool: `workers' AMQP connections, one channel
%% each. Pool-level events go to mod_event_pusher_rabbit, the only user of
%% rabbit pools (MongooseIM's rabbit backend requires the tag event_pusher).
-spec rabbit(global | binary(), atom(), pool_entry()) -> map().
rabbit(Scope, Tag, #{opts := Opts, conn_opts := ConnOpts}) ->
    #{host := Host, port := Port, username := User, password := Password,
      virtual_host := VHost, confirms_enabled := Confirms} = ConnOpts,
    Reconnect = maps:get(reconnect, ConnOpts, #{}),
    Config = #{host => to_binary(Host),
               port => Port,
               username => User,
               password => Password,
               virtual_host => VHost,
               confirms_enabled => Confirms,
               reconnect_attempts => maps:get(attempts, Reconnect, 0),
               reconnect_delay => maps:get(delay, Reconnect, 2000),
               workers => workers(Opts),
               queue_capacity => queue_capacity(Opts),
               confirm_timeout => ?RABBIT_CONFIRM_TIMEOUT_MS,
               event_tag => {mod_event_pusher_rabbit, {Scope, Tag}}},
    with_spool([mod_event_pusher_rabbit], rabbit, Scope, Tag,
               case ConnOpts of
                   #{tls := TLS} -> Config#{tls => tls(TLS)};
                   #{} -> Config
               end).

%% (ours) The pool's disk spool, when a module using it configures one (the
%% first of Modules that does).
-spec with_spool([module()], atom(), global | binary(), atom(), map()) -> map().
with_spool([], _Backend, _Scope, _Tag, Config) ->
    Config;
with_spool([Module | Modules], Backend, Scope, Tag, Config) ->
    case mongoose_event_pusher_spool:for_pool(Module, Scope, Backend, Tag) of
        {ok, Spool, PoolDir} ->
            Config#{spool => mongoose_event_pusher_spool:nif_config(Spool, PoolDir, Backend)};
        none ->
            with_spool(Modules, Backend, Scope, Tag, Config)
    end.

-spec sns(gen_mod:module_opts()) -> map().
sns(#{sns_host := SnsHost, region := Region, access_key_id := AccessKeyId,
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
      queue_capacity => ?SNS_QUEUE_CAPACITY}.

-spec workers(map()) -> pos_integer().
workers(Opts) ->
    maps:get(workers, Opts, 10).

%% `scheme://[userinfo@]host[:port]' of a URL; a text that does not parse as
%% one is kept whole, for the pool start to refuse it with a readable reason.
-spec origin(binary()) -> binary().
origin(Host) ->
    case uri_string:parse(Host) of
        #{scheme := _, host := _} = Parsed ->
            Parts = maps:filter(fun(_Key, Value) -> Value =/= undefined end,
                                maps:with([scheme, userinfo, host, port], Parsed)),
            case uri_string:recompose(Parts#{path => <<>>}) of
                Origin when is_binary(Origin) -> Origin;
                _Error -> Host
            end;
        _NotAUrl ->
            Host
    end.

-spec tls_opt({atom(), term()}) -> [{atom(), term()}].
tls_opt({verify_mode, Mode}) ->
    [{verify_mode, Mode}];
tls_opt({Key, File}) when Key =:= cacertfile; Key =:= certfile;
                          Key =:= keyfile; Key =:= password ->
    [{Key, to_binary(File)}];
tls_opt({versions, Versions}) ->
    [{versions, [to_binary(V) || V <- Versions]}];
tls_opt({server_name_indication, #{enabled := true, host := SNIHost}}) ->
    %% The name sent and matched instead of the URL's host (as Erlang's ssl
    %% does with `{server_name_indication, Host}').
    [{server_name_indication, true}, {sni_host, to_binary(SNIHost)}];
tls_opt({server_name_indication, #{enabled := Enabled}}) ->
    [{server_name_indication, Enabled}];
tls_opt({disconnect_on_failure, false}) ->
    [{disconnect_on_failure, false}];
tls_opt({_Ignored, _}) ->
    [].

-spec warn_ignored(map()) -> ok.
warn_ignored(TLS) ->
    Ignored = [Key || {Key, Value} <- maps:to_list(maps:with([ciphers, crl_files], TLS)),
                      Value =/= [], Value =/= ""],
    case Ignored of
        [] -> ok;
        _ -> ?LOG_WARNING(#{what => event_pusher_tls_options_ignored, options => Ignored,
                            text => <<"These TLS options are not applied by the event pusher's "
                                      "Rust clients">>})
    end,
    case TLS of
        #{disconnect_on_failure := false} ->
            ?LOG_WARNING(#{what => event_pusher_tls_verification_not_enforced,
                           verify_mode => maps:get(verify_mode, TLS, peer),
                           text => <<"disconnect_on_failure = false: connections go on even "
                                     "when the server's certificate fails verification">>});
        #{} ->
            ok
    end.

-spec to_binary(binary() | string() | atom()) -> binary().
to_binary(Bin) when is_binary(Bin) -> Bin;
to_binary(Atom) when is_atom(Atom) -> atom_to_binary(Atom, utf8);
to_binary(List) when is_list(List) -> unicode:characters_to_binary(List).
