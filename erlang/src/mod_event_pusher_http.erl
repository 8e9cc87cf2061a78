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

%% The push_event handler, results of its requests (called by
%% mongoose_event_pusher_pool_owner), the config spec's path processing, and
%% the gen_mod callbacks
-export([push_event/3, handle_pool_result/2, fix_path/1,
         start/2, stop/1, hooks/1, config_spec/0, instrumentation/1, supported_features/0]).

%% (ours) Callbacks get `event_id' too: the ID of the event (UUIDv7 text),
%% the same on every attempt, and in the `event_id_header' if set.
-type handler_opts() :: #{pool_name := atom(),
                          path := binary(),
                          callback_module := module(),
                          max_retries => non_neg_integer(),
                          retry_base_delay => non_neg_integer(),
                          event_id => mongoose_event_pusher_event_id:id(),
                          event_id_header => binary(),
                          retry_on_timeout => boolean(),
                          max_age => pos_integer(),
                          retry_after_max => non_neg_integer(),
                          atom() => term()}.
%% What the pool's owner needs to report a result. It travels with every
%% request through the NIF and back (term_to_binary), so it is a small
%% record: a map with its keys costs twice as much each way.
-record(ctx, {host_type :: mongooseim:host_type(),
              sender :: jid:luser(),
              pool_name :: atom(),
              path :: binary()}).
-type ctx() :: #ctx{}.
%% What http_submit/2 takes.
-type request() :: {{module(), ctx()}, Path :: binary(), [{binary(), binary()}], Body :: binary(),
                    MaxRetries :: non_neg_integer(), RetryBaseMs :: non_neg_integer(),
                    mongoose_event_pusher_event_id:id(),
                    mod_event_pusher_http_delivery:delivery()}.
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
-define(DEFAULT_CALLBACK, mod_event_pusher_http_defaults).
%% (ours) Retries of a request after a connection error, 5xx or 429 (and a
%% timeout with `retry_on_timeout'), and the first wait in ms (doubled each
%% time, plus jitter), unless a handler sets `max_retries' / `retry_base_delay'.
-define(DEFAULT_MAX_RETRIES, 2).
-define(DEFAULT_RETRY_BASE_DELAY, 100).
%% Set while a webhook handler of the host type wants events other than chat events.
-define(NON_CHAT_KEY(HostType), {?MODULE, non_chat_events, HostType}).

%%--------------------------------------------------------------------
%% gen_mod callbacks
%%--------------------------------------------------------------------

%% @doc Acquires the pool of every handler. A pool that cannot be acquired
%% (not in `outgoing_pools', or failing to start) does not fail the start,
%% as in MongooseIM: a warning is logged, each request to it fails with
%% `pool_not_started', and once the pool is configured the next request
%% acquires it (see `no_pool/2').
-spec start(mongooseim:host_type(), gen_mod:module_opts()) -> ok.
start(HostType, #{handlers := Handlers}) ->
    %% (ours) Only webhook handlers with presence or unacknowledged-message
    %% events make the hook look at events other than chat events.
    case mod_event_pusher_http_webhook:wants_non_message_events(Handlers) of
        true -> persistent_term:put(?NON_CHAT_KEY(HostType), true);
        false -> ok
    end,
    lists:foreach(fun(Pool) -> acquire_pool(HostType, Pool) end, pool_names(Handlers)).

%% @doc Releases every pool this host type holds, however it was acquired.
-spec stop(mongooseim:host_type()) -> ok.
stop(HostType) ->
    _ = persistent_term:erase(?NON_CHAT_KEY(HostType)),
    mongoose_event_pusher_pool_hold:release(?MODULE, HostType).

-spec hooks(mongooseim:host_type()) -> [gen_hook:hook_tuple()].
hooks(HostType) ->
    [{push_event, HostType, fun ?MODULE:push_event/3, #{}, 50}].

-spec config_spec() -> mongoose_config_spec:config_section().
config_spec() ->
    #section{items = #{<<"handlers">> => #list{items = handler_config_spec(),
                                              validate = unique},
                       %% (ours) the disk spool of the http pools: doc/durability.md
                       <<"spool">> => mongoose_event_pusher_spool:config_spec()},
             defaults = #{<<"handlers">> => []}}.

-spec instrumentation(mongooseim:host_type()) -> [mongoose_instrument:spec()].
instrumentation(HostType) ->
    Metrics = maps:from_list([{count, spiral}, {failure_count, spiral},
                              {response_time, histogram}]),
    [{?SENT_METRIC, #{host_type => HostType}, #{metrics => Metrics}}].

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
push_event(HookAcc = #{acc := Acc}, #{event := Event = #chat_event{}},
           #{host_type := HostType}) ->
    %% (ours) callbacks keep MongooseIM's arities and find the hook's metadata
    %% in the accumulator they get.
    CallbackAcc = mongoose_acc:set(event_pusher, metadata,
                                   maps:get(metadata, HookAcc, #{}), Acc),
    %% The default covers an event still running while the module stops.
    Handlers = gen_mod:get_module_opt(HostType, ?MODULE, handlers, []),
    run_handlers(Handlers, HostType, CallbackAcc, Event, undefined),
    {ok, HookAcc};
push_event(HookAcc = #{acc := Acc}, #{event := Event}, #{host_type := HostType}) ->
    %% (ours) Presence and unacknowledged-message events, for webhook handlers.
    case persistent_term:get(?NON_CHAT_KEY(HostType), false) of
        true ->
            WebhookAcc = mongoose_acc:set(event_pusher, metadata,
                                          maps:get(metadata, HookAcc, #{}), Acc),
            Handlers = gen_mod:get_module_opt(HostType, ?MODULE, handlers, []),
            run_handlers(Handlers, HostType, WebhookAcc, Event, undefined);
        false ->
            ok
    end,
    {ok, HookAcc}.

%%--------------------------------------------------------------------
%% Pool results
%%--------------------------------------------------------------------

%% @doc Reports one outcome of a request submitted by this module: its last
%% attempt (a response or a failure), and whether it was given up.
-spec handle_pool_result(ctx(), Outcome) -> ok when
      Outcome :: {response, 100..599, non_neg_integer()}
               | {error, binary(), non_neg_integer()}
               | {timeout, non_neg_integer()}
               | {dropped, atom()}.
handle_pool_result(#ctx{host_type = HostType, sender = Sender}, {response, Status, TimeUs}) ->
    execute(HostType, #{count => 1, response_time => TimeUs, sender => Sender,
                        response_code => integer_to_binary(Status)});
handle_pool_result(Ctx, {error, Reason, _TimeUs}) ->
    req_failed(Ctx, Reason);
handle_pool_result(Ctx = #ctx{host_type = HostType, sender = Sender}, {timeout, _TimeUs}) ->
    %% (ours) The request was sent and got no answer in time: the endpoint
    %% may have processed it, so it is not a drop. Counted as a failure, as
    %% MongooseIM counts a timeout.
    ?LOG_WARNING((log_meta(Ctx))#{what => event_pusher_http_timeout, outcome => unknown,
                                  text => <<"mod_event_pusher_http HTTP call timed out; "
                                            "the endpoint may have processed it">>}),
    execute(HostType, #{failure_count => 1, sender => Sender});
handle_pool_result(Ctx, {dropped, Reason}) ->
    %% After retries_exhausted the last attempt was already counted; a
    %% request dropped at close or for its age may have had none reported,
    %% so that one counts as a failure.
    dropped(Ctx, Reason, Reason =/= retries_exhausted).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec handler_config_spec() -> mongoose_config_spec:config_section().
handler_config_spec() ->
    %% {Key, Spec, Default}; our own options (max_retries, retry_base_delay)
    %% have no default here, so an existing MongooseIM config comes out
    %% unchanged and the code applies their defaults.
    %% (ours) The webhook options have no default either (see
    %% mod_event_pusher_http_webhook:process_handler/1).
    Options = [{<<"pool_name">>, #option{type = atom, validate = pool_name}, http_pool},
               {<<"path">>, #option{type = binary, process = fun ?MODULE:fix_path/1}, <<>>},
               {<<"callback_module">>, #option{type = atom, validate = module},
                ?DEFAULT_CALLBACK},
               {<<"max_retries">>, #option{type = integer, validate = non_negative}, none},
               {<<"retry_base_delay">>, #option{type = integer, validate = non_negative}, none},
               {<<"event_id_header">>,
                #option{type = binary, validate = non_empty,
                        process = fun mod_event_pusher_http_delivery:check_header_name/1}, none}]
        ++ [{Key, Spec, none} || {Key, Spec} <- mod_event_pusher_http_delivery:config_items()]
        ++ [{Key, Spec, none} || {Key, Spec} <- mod_event_pusher_http_webhook:handler_items()],
    #section{items = maps:from_list([{Key, Spec} || {Key, Spec, _} <- Options]),
             defaults = maps:from_list([{Key, Default} || {Key, _, Default} <- Options,
                                                          Default =/= none]),
             process = fun mod_event_pusher_http_webhook:process_handler/1}.

-spec pool_names([handler_opts()]) -> [atom()].
pool_names(Handlers) ->
    lists:usort([Pool || #{pool_name := Pool} <- Handlers]).

%%--------------------------------------------------------------------
%% Pools
%%--------------------------------------------------------------------

-spec acquire_pool(mongooseim:host_type(), atom()) -> ok.
acquire_pool(HostType, Pool) ->
    case mongoose_event_pusher_pool_hold:acquire(?MODULE, http, HostType, Pool) of
        {ok, _Ref, _Scope} ->
            ok;
        {error, Reason} ->
            ?LOG_WARNING(#{what => event_pusher_http_pool_unavailable, host_type => HostType,
                           pool => pool_path(Pool), reason => Reason,
                           text => <<"Requests to this pool fail until it is configured; "
                                     "the first request after that starts it">>})
    end.

-spec pool_path(atom()) -> binary().
pool_path(Pool) ->
    <<"outgoing_pools.http.", (atom_to_binary(Pool, utf8))/binary>>.

%% The pool is not running for this host type. If it is configured by now
%% (e.g. added after the module started), this request has the pool
%% acquired and is sent by the process that does it. Anything else,
%% including requests made while that acquire runs, fails as in MongooseIM.
-spec no_pool(request(), ctx()) -> ok.
no_pool(Request, Ctx = #ctx{host_type = HostType, pool_name = Pool}) ->
    Then = fun(Acquired) -> submit_acquired(Acquired, Request, Ctx) end,
    case mongoose_event_pusher_pool_hold:acquire_on_use(?MODULE, http, HostType, Pool, Then) of
        true -> ok;
        false -> req_failed(Ctx, pool_not_started)
    end.

-spec submit_acquired(mongoose_event_pusher_pool_hold:acquired(), request(), ctx()) -> ok.
submit_acquired({ok, PoolRef}, Request, Ctx = #ctx{host_type = HostType, pool_name = Pool}) ->
    ?LOG_INFO(#{what => event_pusher_http_pool_acquired, host_type => HostType,
                pool => pool_path(Pool)}),
    submit(PoolRef, Request, Ctx);
submit_acquired(stopped, _Request, Ctx) ->
    req_failed(Ctx, pool_not_started);
submit_acquired({error, Why}, _Request, Ctx = #ctx{host_type = HostType, pool_name = Pool}) ->
    ?LOG_WARNING(#{what => event_pusher_http_pool_unavailable, host_type => HostType,
                   pool => pool_path(Pool), reason => Why}),
    req_failed(Ctx, pool_not_started).

%%--------------------------------------------------------------------
%% Requests
%%--------------------------------------------------------------------

%% A handler with webhook options (ours) is run by its options; any other
%% by its callback module, for chat events only, as in MongooseIM. The
%% event's webhook ID and time are made once, by the first webhook handler
%% that sends it.
-spec run_handlers([handler_opts()], mongooseim:host_type(), mongoose_acc:t(),
                   mod_event_pusher:event(), mod_event_pusher_http_webhook:stamp()) -> ok.
run_handlers([Opts = #{events := _} | Handlers], HostType, Acc, Event, Stamp) ->
    Stamp1 = run_webhook(HostType, Acc, Event, Opts, Stamp),
    run_handlers(Handlers, HostType, Acc, Event, Stamp1);
run_handlers([Opts | Handlers], HostType, Acc,
             Event = #chat_event{direction = Dir, from = From, to = To, packet = Packet}, Stamp) ->
    run_handler(HostType, Acc, Dir, From, To, Packet, Opts),
    run_handlers(Handlers, HostType, Acc, Event, Stamp);
run_handlers([_CallbackHandler | Handlers], HostType, Acc, Event, Stamp) ->
    run_handlers(Handlers, HostType, Acc, Event, Stamp);
run_handlers([], _HostType, _Acc, _Event, _Stamp) ->
    ok.

%% A webhook handler's part of an event; as for callbacks, a failure is
%% logged and ends only this handler's part. The log has no arguments of
%% the failing call (they may hold the body), only its reason and where.
-spec run_webhook(mongooseim:host_type(), mongoose_acc:t(), mod_event_pusher:event(),
                  handler_opts(), mod_event_pusher_http_webhook:stamp()) ->
          mod_event_pusher_http_webhook:stamp().
run_webhook(HostType, Acc, Event, Opts, Stamp) ->
    try mod_event_pusher_http_webhook:request(Acc, Event, Opts, Stamp) of
        {skip, Stamp1} ->
            Stamp1;
        {{Sender, LogMeta, Headers, Body}, Stamp1 = {Id, _Ms}} ->
            queue_req(HostType, Sender, LogMeta, Headers, Body, Opts, Id),
            Stamp1
    catch
        Class:Reason:Stacktrace ->
            ?LOG_ERROR(#{what => event_pusher_http_handler_failed, host_type => HostType,
                         pool_name => maps:get(pool_name, Opts), class => Class,
                         reason => webhook_reason(Reason),
                         stacktrace => [{M, F, arity(A), L} || {M, F, A, L} <- Stacktrace]}),
            Stamp
    end.

-spec webhook_reason(term()) -> term().
webhook_reason({invalid_json, _Value}) -> invalid_json_metadata;
webhook_reason(Reason) -> Reason.

-spec arity(list() | arity()) -> arity().
arity(Args) when is_list(Args) -> length(Args);
arity(Arity) -> Arity.

%% Everything a handler does for one event: its callbacks and the submit.
%% A crash anywhere in it (a callback, a header that is not text, a request
%% the NIF refuses) is logged and ends only this handler's part.
-spec run_handler(mongooseim:host_type(), mongoose_acc:t(), in | out, jid:jid(), jid:jid(),
                  exml:element(), handler_opts()) -> ok.
run_handler(HostType, Acc, Dir, From, To, Packet, Opts0 = #{callback_module := Mod}) ->
    %% (ours) The ID is made before the callbacks, which find it in their
    %% Opts; our default module reads no ID, so for it only an event that is
    %% sent gets one (about 1 us saved per skipped event).
    Opts = case Mod of
               ?DEFAULT_CALLBACK -> Opts0;
               _ -> with_event_id(Opts0)
           end,
    try
        case Mod:should_make_req(Acc, Dir, Packet, From, To, Opts) of
            true ->
                Message = exml_query:path(Packet, [{element, <<"body">>}, cdata], <<>>),
                make_req(HostType, Acc, Dir, From, To, Message, with_event_id(Opts));
            _ ->
                ok
        end
    catch
        Class:Reason:Stacktrace ->
            ?LOG_ERROR(#{what => event_pusher_http_handler_failed, host_type => HostType,
                         callback_module => Mod, pool_name => maps:get(pool_name, Opts),
                         class => Class, reason => Reason, stacktrace => Stacktrace})
    end.

-spec with_event_id(handler_opts()) -> handler_opts().
with_event_id(Opts = #{event_id := _}) -> Opts;
with_event_id(Opts) -> Opts#{event_id => mongoose_event_pusher_event_id:new()}.

-spec make_req(mongooseim:host_type(), mongoose_acc:t(), in | out, jid:jid(), jid:jid(),
               binary(), handler_opts()) -> ok.
make_req(HostType, Acc, Dir, #jid{lserver = Host, luser = Sender}, #jid{luser = Receiver},
         Message, Opts = #{callback_module := Mod, event_id := Id}) ->
    Body = iolist_to_binary(Mod:prepare_body(Acc, Dir, Host, Message, Sender, Receiver, Opts)),
    Headers = [{to_binary(Name), to_binary(Value)}
               || {Name, Value} <- Mod:prepare_headers(Acc, Dir, Host, Message,
                                                       Sender, Receiver, Opts)],
    queue_req(HostType, Sender, #{receiver => Receiver, direction => Dir, server => Host},
              Headers, Body, Opts, Id).

-spec queue_req(mongooseim:host_type(), jid:luser(), map(), [{binary(), binary()}], binary(),
                handler_opts(), mongoose_event_pusher_event_id:id()) -> ok.
queue_req(HostType, Sender, LogMeta, Headers, Body,
          Opts = #{pool_name := PoolName, path := Path}, Id) ->
    Ctx = #ctx{host_type = HostType, sender = Sender, pool_name = PoolName, path = Path},
    ?LOG_INFO(maps:merge(LogMeta, (log_meta(Ctx))#{what => event_pusher_http_req,
                               text => <<"mod_event_pusher_http queues an HTTP call">>})),
    IdHeaders = mod_event_pusher_http_delivery:with_id_header(
                  maps:get(event_id_header, Opts, undefined), Id, Headers),
    Request = {{?MODULE, Ctx}, Path, IdHeaders, Body,
               maps:get(max_retries, Opts, ?DEFAULT_MAX_RETRIES),
               maps:get(retry_base_delay, Opts, ?DEFAULT_RETRY_BASE_DELAY), Id,
               mod_event_pusher_http_delivery:delivery(Opts)},
    case mongoose_event_pusher_pool_hold:pool(http, HostType, PoolName) of
        undefined -> no_pool(Request, Ctx);
        Pool -> submit(Pool, Request, Ctx)
    end.

-spec submit(mongoose_event_pusher_pool_owner:pool_ref(), request(), ctx()) -> ok.
submit(Pool, Request, Ctx) ->
    try mongoose_event_pusher_nif:http_submit(Pool, Request) of
        ok -> ok;
        {error, Reason} -> dropped(Ctx, Reason, true)
    catch
        error:badarg ->
            %% A header name or value HTTP cannot carry, or a path no request
            %% line can hold: nothing was sent; counted as a failed request.
            ?LOG_ERROR((log_meta(Ctx))#{what => event_pusher_http_handler_failed,
                                        reason => invalid_request,
                                        text => <<"The request built by the callback module "
                                                  "cannot be sent over HTTP">>}),
            execute(Ctx#ctx.host_type, #{failure_count => 1, sender => Ctx#ctx.sender})
    end.

%% MongooseIM's log and measurement for a request that got no response.
-spec req_failed(ctx(), term()) -> ok.
req_failed(Ctx = #ctx{host_type = HostType, sender = Sender}, Reason) ->
    ?LOG_WARNING((log_meta(Ctx))#{what => event_pusher_http_req_failed, reason => Reason,
                                  text => <<"mod_event_pusher_http HTTP call failed">>}),
    execute(HostType, #{failure_count => 1, sender => Sender}).

-spec dropped(ctx(), atom(), boolean()) -> ok.
dropped(Ctx = #ctx{host_type = HostType, sender = Sender}, Reason, CountFailure) ->
    mongoose_event_pusher_drop_log:log(
      warning, {?MODULE, HostType, Ctx#ctx.pool_name},
      (log_meta(Ctx))#{what => event_pusher_http_dropped, reason => Reason,
                       text => <<"mod_event_pusher_http gave up an HTTP call">>}),
    case CountFailure of
        true -> execute(HostType, #{failure_count => 1, sender => Sender});
        false -> ok
    end.

-spec log_meta(ctx()) -> map().
log_meta(#ctx{host_type = HostType, sender = Sender, pool_name = PoolName, path = Path}) ->
    #{host_type => HostType, sender => Sender, pool_name => PoolName, path => Path}.

-spec execute(mongooseim:host_type(), mongoose_instrument:measurements()) -> ok.
execute(HostType, Measurements) ->
    mongoose_event_pusher_pool_owner:instrument(?SENT_METRIC, #{host_type => HostType}, Measurements).

-spec to_binary(iodata() | atom()) -> binary().
to_binary(Atom) when is_atom(Atom) -> atom_to_binary(Atom, utf8);
to_binary(Bin) when is_binary(Bin) -> Bin;
to_binary(List) when is_list(List) -> unicode:characters_to_binary(List).
