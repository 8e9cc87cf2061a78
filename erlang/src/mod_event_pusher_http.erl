%% @doc The http backend of the event pusher: for each chat event and each
%% configured handler, asks the handler's callback module whether to POST,
%% what body and which headers, and hands the request to the handler's Rust
%% HTTP pool. The hook never waits for the request: results come back to the
%% pool's owner, which calls handle_pool_result/2 (instrumentation and logs).
-module(mod_event_pusher_http).

%% No `-behaviour(gen_mod)': see mod_event_pusher.

-include("mongoose.hrl").
-include("jlib.hrl").
-include("mongoose_config_spec.hrl").
-include("mod_event_pusher_events.hrl").

%% gen_mod callbacks
-export([start/2, stop/1, hooks/1, config_spec/0, instrumentation/1, supported_features/0]).

%% Hook handler
-export([push_event/3]).

%% Pool results (called by mongoose_event_pusher_pool)
-export([handle_pool_result/2]).

%% Config spec callback
-export([fix_path/1]).

-type handler_opts() :: #{pool_name := atom(),
                          path := binary(),
                          callback_module := module(),
                          max_retries => non_neg_integer(),
                          retry_base_delay => non_neg_integer(),
                          atom() => term()}.
%% What the pool's owner needs to report a result.
-type ctx() :: #{host_type := mongooseim:host_type(), sender := jid:luser(),
                 pool_name := atom(), path := binary()}.
-export_type([handler_opts/0, ctx/0]).

-callback should_make_req(Acc :: mongoose_acc:t(), Dir :: in | out, Packet :: exml:element(),
                          From :: jid:jid(), To :: jid:jid(), Opts :: handler_opts()) ->
    boolean().
-callback prepare_body(Acc :: mongoose_acc:t(), Dir :: in | out, Host :: jid:lserver(),
                       Message :: binary(), Sender :: jid:luser(), Receiver :: jid:luser(),
                       Opts :: handler_opts()) ->
    iodata().
-callback prepare_headers(Acc :: mongoose_acc:t(), Dir :: in | out, Host :: jid:lserver(),
                          Message :: binary(), Sender :: jid:luser(), Receiver :: jid:luser(),
                          Opts :: handler_opts()) ->
    [{binary(), binary()}].

-define(SENT_METRIC, mod_event_pusher_http_sent).
%% (ours) Retries of a request after a connection error, timeout or 5xx, and
%% the first wait in ms (doubled each time, plus jitter), unless a handler sets
%% `max_retries' / `retry_base_delay'.
-define(DEFAULT_MAX_RETRIES, 2).
-define(DEFAULT_RETRY_BASE_DELAY, 100).

%%--------------------------------------------------------------------
%% gen_mod callbacks
%%--------------------------------------------------------------------

%% @doc Acquires the pool of every handler; fails, naming the pool, if one is
%% not configured (releasing what was already acquired).
-spec start(mongooseim:host_type(), gen_mod:module_opts()) -> ok.
start(HostType, #{handlers := Handlers}) ->
    acquire_pools(HostType, pool_names(Handlers), []).

-spec stop(mongooseim:host_type()) -> ok.
stop(HostType) ->
    Handlers = gen_mod:get_module_opt(HostType, ?MODULE, handlers, []),
    lists:foreach(fun(Pool) -> mongoose_event_pusher_pools:release(http, HostType, Pool) end,
                  pool_names(Handlers)).

-spec hooks(mongooseim:host_type()) -> [gen_hook:hook_tuple()].
hooks(HostType) ->
    [{push_event, HostType, fun ?MODULE:push_event/3, #{}, 50}].

-spec config_spec() -> mongoose_config_spec:config_section().
config_spec() ->
    #section{items = #{<<"handlers">> => #list{items = handler_config_spec(),
                                              validate = unique}},
             defaults = #{<<"handlers">> => []}}.

-spec instrumentation(mongooseim:host_type()) -> [mongoose_instrument:spec()].
instrumentation(HostType) ->
    [{?SENT_METRIC, #{host_type => HostType},
      #{metrics => #{count => spiral, response_time => histogram, failure_count => spiral}}}].

-spec supported_features() -> [atom()].
supported_features() ->
    [dynamic_domains].

%% @doc Strips exactly one leading "/" (the pool's path_prefix ends the URL
%% prefix, so MongooseIM configs write paths both ways).
-spec fix_path(binary()) -> binary().
fix_path(<<"/", Path/binary>>) -> Path;
fix_path(Path) -> Path.

%%--------------------------------------------------------------------
%% Hook handler
%%--------------------------------------------------------------------

-spec push_event(mod_event_pusher:push_event_acc(), mod_event_pusher:push_event_params(),
                 map()) -> {ok, mod_event_pusher:push_event_acc()}.
push_event(HookAcc = #{acc := Acc},
           #{event := #chat_event{direction = Dir, from = From, to = To, packet = Packet}},
           #{host_type := HostType}) ->
    %% (ours) callbacks keep MongooseIM's arities and find the hook's metadata
    %% in the accumulator they get.
    CallbackAcc = mongoose_acc:set(event_pusher, metadata,
                                   maps:get(metadata, HookAcc, #{}), Acc),
    Handlers = gen_mod:get_module_opt(HostType, ?MODULE, handlers),
    lists:foreach(fun(Opts) -> run_handler(HostType, CallbackAcc, Dir, From, To, Packet, Opts) end,
                  Handlers),
    {ok, HookAcc};
push_event(HookAcc, _Params, _Extra) ->
    {ok, HookAcc}.

%%--------------------------------------------------------------------
%% Pool results
%%--------------------------------------------------------------------

%% @doc Reports one outcome of a request submitted by this module: its last
%% attempt (a response or a failure), and whether it was given up.
-spec handle_pool_result(ctx(), Outcome) -> ok when
      Outcome :: {response, 100..599, non_neg_integer()}
               | {error, binary(), non_neg_integer()}
               | {dropped, atom()}.
handle_pool_result(#{host_type := HostType, sender := Sender}, {response, Status, TimeUs}) ->
    execute(HostType, #{count => 1, response_time => TimeUs, sender => Sender,
                        response_code => integer_to_binary(Status)});
handle_pool_result(Ctx = #{host_type := HostType, sender := Sender}, {error, Reason, _TimeUs}) ->
    ?LOG_WARNING((log_meta(Ctx))#{what => event_pusher_http_req_failed, reason => Reason,
                                  text => <<"mod_event_pusher_http HTTP call failed">>}),
    execute(HostType, #{failure_count => 1, sender => Sender});
handle_pool_result(Ctx, {dropped, Reason}) ->
    %% The last attempt was already counted; a request dropped at close may
    %% have had none, so that one also counts as a failure.
    dropped(Ctx, Reason, Reason =:= closed).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec handler_config_spec() -> mongoose_config_spec:config_section().
handler_config_spec() ->
    #section{items = #{<<"pool_name">> => #option{type = atom, validate = pool_name},
                       <<"path">> => #option{type = binary, process = fun ?MODULE:fix_path/1},
                       <<"callback_module">> => #option{type = atom, validate = module},
                       %% (ours) no defaults here, so that the options of an
                       %% existing MongooseIM config come out unchanged.
                       <<"max_retries">> => #option{type = integer, validate = non_negative},
                       <<"retry_base_delay">> => #option{type = integer,
                                                         validate = non_negative}},
             defaults = #{<<"pool_name">> => http_pool,
                          <<"path">> => <<>>,
                          <<"callback_module">> => mod_event_pusher_http_defaults}}.

-spec pool_names([handler_opts()]) -> [atom()].
pool_names(Handlers) ->
    lists:usort([Pool || #{pool_name := Pool} <- Handlers]).

-spec acquire_pools(mongooseim:host_type(), [atom()], [atom()]) -> ok.
acquire_pools(_HostType, [], _Acquired) ->
    ok;
acquire_pools(HostType, [Pool | Rest], Acquired) ->
    case mongoose_event_pusher_pools:acquire(http, HostType, Pool) of
        {ok, _Ref} ->
            acquire_pools(HostType, Rest, [Pool | Acquired]);
        {error, Reason} ->
            lists:foreach(fun(P) -> mongoose_event_pusher_pools:release(http, HostType, P) end,
                          Acquired),
            error(#{what => event_pusher_http_pool_unavailable, host_type => HostType,
                    pool => <<"outgoing_pools.http.", (atom_to_binary(Pool, utf8))/binary>>,
                    reason => Reason})
    end.

%% One handler's failure (e.g. a callback crash) is logged and does not keep
%% the other handlers from running.
-spec run_handler(mongooseim:host_type(), mongoose_acc:t(), in | out, jid:jid(), jid:jid(),
                  exml:element(), handler_opts()) -> ok.
run_handler(HostType, Acc, Dir, From, To, Packet, Opts = #{callback_module := Mod}) ->
    try Mod:should_make_req(Acc, Dir, Packet, From, To, Opts) of
        true ->
            Message = exml_query:path(Packet, [{element, <<"body">>}, cdata], <<>>),
            make_req(HostType, Acc, Dir, From, To, Message, Opts);
        _ ->
            ok
    catch
        Class:Reason:Stacktrace ->
            ?LOG_ERROR(#{what => event_pusher_http_handler_failed, host_type => HostType,
                         callback_module => Mod, pool_name => maps:get(pool_name, Opts),
                         class => Class, reason => Reason, stacktrace => Stacktrace})
    end.

-spec make_req(mongooseim:host_type(), mongoose_acc:t(), in | out, jid:jid(), jid:jid(),
               binary(), handler_opts()) -> ok.
make_req(HostType, Acc, Dir, #jid{lserver = Host, luser = Sender}, #jid{luser = Receiver},
         Message, Opts = #{callback_module := Mod, pool_name := PoolName, path := Path}) ->
    Body = iolist_to_binary(Mod:prepare_body(Acc, Dir, Host, Message, Sender, Receiver, Opts)),
    Headers = [{to_binary(Name), to_binary(Value)}
               || {Name, Value} <- Mod:prepare_headers(Acc, Dir, Host, Message,
                                                       Sender, Receiver, Opts)],
    Ctx = #{host_type => HostType, sender => Sender, pool_name => PoolName, path => Path},
    ?LOG_INFO((log_meta(Ctx))#{what => event_pusher_http_req, receiver => Receiver,
                               direction => Dir, server => Host,
                               text => <<"mod_event_pusher_http queues an HTTP call">>}),
    Request = {{?MODULE, Ctx}, Path, Headers, Body,
               maps:get(max_retries, Opts, ?DEFAULT_MAX_RETRIES),
               maps:get(retry_base_delay, Opts, ?DEFAULT_RETRY_BASE_DELAY)},
    submit(mongoose_event_pusher_pools:lookup(http, HostType, PoolName), Request, Ctx).

-spec submit(mongoose_event_pusher_pool:pool_ref() | undefined, tuple(), ctx()) -> ok.
submit(undefined, _Request, Ctx) ->
    dropped(Ctx, pool_not_started, true);
submit(Pool, Request, Ctx) ->
    case mongoose_event_pusher_nif:http_submit(Pool, Request) of
        ok -> ok;
        {error, Reason} -> dropped(Ctx, Reason, true)
    end.

-spec dropped(ctx(), atom(), boolean()) -> ok.
dropped(Ctx = #{host_type := HostType, sender := Sender}, Reason, CountFailure) ->
    ?LOG_WARNING((log_meta(Ctx))#{what => event_pusher_http_dropped, reason => Reason,
                                  text => <<"mod_event_pusher_http gave up an HTTP call">>}),
    case CountFailure of
        true -> execute(HostType, #{failure_count => 1, sender => Sender});
        false -> ok
    end.

-spec log_meta(ctx()) -> map().
log_meta(#{host_type := HostType, sender := Sender, pool_name := PoolName, path := Path}) ->
    #{host_type => HostType, sender => Sender, pool_name => PoolName, path => Path}.

%% A late result, after the module stopped on this host type, finds its event
%% gone; there is nothing left to count it in.
-spec execute(mongooseim:host_type(), map()) -> ok.
execute(HostType, Measurements) ->
    try
        mongoose_instrument:execute(?SENT_METRIC, #{host_type => HostType}, Measurements)
    catch
        error:#{what := event_not_registered} -> ok
    end.

-spec to_binary(iodata() | atom()) -> binary().
to_binary(Atom) when is_atom(Atom) -> atom_to_binary(Atom, utf8);
to_binary(Bin) when is_binary(Bin) -> Bin;
to_binary(List) when is_list(List) -> unicode:characters_to_binary(List).
