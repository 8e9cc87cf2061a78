%% @doc XEP-0357 push notifications for the event pusher (doc/compatibility.md §7).
%%
%% A client enables push by sending `<enable/>' in `urn:xmpp:push:0' naming a
%% pubsub service and node (an app server); `mod_event_pusher_push_iq'
%% checks and carries out such requests. When a message reaches a user who is
%% offline, or is left unacknowledged, `push_event' runs the plugin flow
%% (`mod_event_pusher_push_plugin'); the default plugin hands the actual
%% sending to `mod_event_pusher_push_publish'.
%%
%% XMPP routing stays in the BEAM, but never in the user's process: publish
%% IQs are routed, and their replies handled, by the `pusher_push' generic
%% worker pool (the `wpool' option).
-module(mod_event_pusher_push).

%% No `-behaviour(gen_mod)': see mod_event_pusher.

-include("mod_event_pusher_events.hrl").
-include("mongoose.hrl").
-include("jlib.hrl").
-include("mongoose_config_spec.hrl").

%% gen_mod callbacks
-export([start/2, stop/1, hooks/1, config_spec/0, supported_features/0, instrumentation/1]).

%% mongoose_module_metrics callback
-export([config_metrics/1]).

%% Hook handlers and IQ handler
-export([push_event/3, remove_user/3, remove_domain/3, iq_handler/5]).

%% Used by plugins and by mod_push_service_mongoosepush
-export([cast/3, is_virtual_pubsub_host/3, disable_node/4, count/3]).

-type pubsub_node() :: binary().
-type form() :: #{binary() => binary()}.
-type publish_service() :: {PubSub :: jid:jid(), Node :: pubsub_node(), Form :: form()}.
%% Our counters (instrumentation events, one per outcome).
-type outcome() :: published | skipped | failed | disabled.
-export_type([pubsub_node/0, form/0, publish_service/0, outcome/0]).

-define(WORKERS, pusher_push).
-define(IQ_ROUTERS, [ejabberd_local, ejabberd_sm]).
-define(OUTCOMES, [published, skipped, failed, disabled]).

%%--------------------------------------------------------------------
%% gen_mod callbacks
%%--------------------------------------------------------------------

%% @doc Refuses at once a backend the host type cannot run (rdbms without
%% an rdbms pool), then brings up the workers, the storage, the plugin and
%% the IQ handlers, in that order.
-spec start(mongooseim:host_type(), gen_mod:module_opts()) -> ok.
start(HostType, #{backend := Backend} = Opts) ->
    ok = mod_event_pusher_push_backend:check_supported(HostType, Backend),
    ?LOG_INFO(#{what => event_pusher_push_starting, host_type => HostType, backend => Backend}),
    {ok, _} = mongoose_wpool:start(generic, HostType, ?WORKERS,
                                   maps:to_list(maps:get(wpool, Opts))),
    ok = mod_event_pusher_push_backend:init(HostType, Opts),
    ok = mod_event_pusher_push_plugin:init(HostType, Opts),
    Discipline = maps:get(iqdisc, Opts),
    Handler = fun ?MODULE:iq_handler/5,
    _ = [gen_iq_handler:add_iq_handler_for_domain(HostType, ?NS_PUSH, Router, Handler, #{},
                                                  Discipline) || Router <- ?IQ_ROUTERS],
    ok.

-spec stop(mongooseim:host_type()) -> ok.
stop(HostType) ->
    Unregister = fun(Router) ->
                         gen_iq_handler:remove_iq_handler_for_domain(HostType, ?NS_PUSH, Router)
                 end,
    lists:foreach(Unregister, lists:reverse(?IQ_ROUTERS)),
    _ = mongoose_wpool:stop(generic, HostType, ?WORKERS),
    ok.

-spec hooks(mongooseim:host_type()) -> [gen_hook:hook_tuple()].
hooks(HostType) ->
    %% Each hook is handled by the function of the same name.
    lists:map(fun({Name, Priority}) -> {Name, HostType, fun ?MODULE:Name/3, #{}, Priority} end,
              [{remove_user, 90}, {remove_domain, 50}, {push_event, 50}]).

%% @doc MongooseIM's options, and (ours) `privacy'
%% (mod_event_pusher_push_privacy). `backend' rdbms needs an rdbms pool,
%% checked at start.
-spec config_spec() -> mongoose_config_spec:config_section().
config_spec() ->
    Options = [{<<"iqdisc">>, mongoose_config_spec:iqdisc(), one_queue},
               {<<"backend">>, #option{type = atom, validate = {enum, [mnesia, rdbms]}}, mnesia},
               {<<"wpool">>, (mongoose_config_spec:wpool(#{<<"strategy">> => available_worker}))
                              #section{include = always}, none},
               {<<"plugin_module">>, #option{type = atom, validate = module},
                mod_event_pusher_push_plugin:default_plugin_module()},
               {<<"virtual_pubsub_hosts">>, #list{items = pubsub_host_template()}, []},
               {<<"privacy">>, mod_event_pusher_push_privacy:config_spec(), none}],
    #section{items = maps:from_list([{Key, Spec} || {Key, Spec, _} <- Options]),
             defaults = maps:from_list([{Key, Default} || {Key, _, Default} <- Options,
                                                          Default =/= none])}.

-spec supported_features() -> [atom()].
supported_features() ->
    [dynamic_domains].

%% @doc (ours) One event per outcome of a notification, labelled by host type.
-spec instrumentation(mongooseim:host_type()) -> [mongoose_instrument:spec()].
instrumentation(HostType) ->
    [{event_name(Outcome), #{host_type => HostType}, #{metrics => #{count => spiral}}}
     || Outcome <- ?OUTCOMES].

-spec config_metrics(mongooseim:host_type()) -> [{atom(), atom()}].
config_metrics(HostType) ->
    #{backend := Store} = gen_mod:get_module_opts(HostType, ?MODULE),
    [{backend, Store}].

%%--------------------------------------------------------------------
%% Hook handlers
%%--------------------------------------------------------------------

%% @doc Outgoing chat and groupchat messages notify the bare recipient;
%% an unacknowledged message notifies its `to'. Nothing else does.
-spec push_event(mod_event_pusher:push_event_acc(), mod_event_pusher:push_event_params(),
                 gen_hook:extra()) -> {ok, mod_event_pusher:push_event_acc()}.
push_event(#{acc := Acc} = HookAcc, #{event := Event}, _Extra) ->
    case recipient(Event) of
        {notify, To} -> {ok, HookAcc#{acc := mod_event_pusher_push_plugin:run(Acc, Event, To)}};
        ignore -> {ok, HookAcc}
    end.

-spec remove_user(mongoose_acc:t(), #{jid := jid:jid()}, gen_hook:extra()) ->
          {ok, mongoose_acc:t()}.
remove_user(Acc, Params, Extra) ->
    Owner = jid:to_bare(maps:get(jid, Params)),
    HostType = maps:get(host_type, Extra),
    case mod_event_pusher_push_backend:disable(HostType, Owner) of
        {error, Why} ->
            ?LOG_ERROR(#{what => push_remove_user_failed, host_type => HostType,
                         user => jid:to_binary(Owner), reason => Why});
        ok ->
            ok
    end,
    {ok, Acc}.

-spec remove_domain(Acc, #{domain := jid:lserver()}, gen_hook:extra()) -> {ok, Acc}
              when Acc :: term().
remove_domain(Acc, Params, Extra) ->
    ok = forget_domain(Extra, Params),
    {ok, Acc}.

%% @doc `urn:xmpp:push:0' IQs, to the server or to the user's bare JID.
-spec iq_handler(mongoose_acc:t(), jid:jid(), jid:jid(), #iq{}, gen_hook:extra()) ->
          {mongoose_acc:t(), #iq{}}.
iq_handler(Acc, From, _To, IQ, _Extra) ->
    {Acc, mod_event_pusher_push_iq:handle(Acc, From, IQ)}.

%%--------------------------------------------------------------------
%% Used by plugins
%%--------------------------------------------------------------------

%% @doc Forgets the node (each node of the service when Node is undefined),
%% both in storage and in the sessions of the user.
-spec disable_node(mongooseim:host_type(), UserJID :: jid:jid(), PubSub :: jid:jid(),
                   Node :: pubsub_node() | undefined) -> ok | {error, term()}.
disable_node(HostType, UserJID, PubSub, Node) ->
    Stored = mod_event_pusher_push_backend:disable(HostType, jid:to_bare(UserJID), PubSub, Node),
    ok = mod_event_pusher_push_sessions:forget(UserJID, PubSub, Node),
    Stored.

%% @doc Applies F to A in one of the host type's `pusher_push' workers, so
%% that the caller (a user's process) never waits on the network.
-spec cast(mongooseim:host_type(), function(), [term()]) -> ok.
cast(HostType, F, A) ->
    Job = {erlang, apply, [F, A]},
    case mongoose_wpool:cast(generic, HostType, ?WORKERS, Job) of
        _Queued -> ok
    end.

%% @doc Whether PubSubDomain is a configured virtual pubsub host for the
%% recipient's domain (a template stands for `<prefix>.<RecipientDomain>').
-spec is_virtual_pubsub_host(mongooseim:host_type(), RecipientDomain :: jid:lserver(),
                             PubSubDomain :: jid:lserver()) -> boolean().
is_virtual_pubsub_host(HostType, RecipientDomain, PubSubDomain) ->
    #{virtual_pubsub_hosts := Patterns} = gen_mod:get_module_opts(HostType, ?MODULE),
    [] =/= [P || P <- Patterns,
                 mongoose_subdomain_utils:is_subdomain(P, RecipientDomain, PubSubDomain)].

%% @doc (ours) Emits the instrumentation event of one outcome.
-spec count(mongooseim:host_type(), outcome(), map()) -> ok.
count(HostType, Outcome, Details) ->
    mongoose_instrument:execute(event_name(Outcome), #{host_type => HostType},
                                Details#{count => 1}).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec recipient(mod_event_pusher:event()) -> {notify, jid:jid()} | ignore.
recipient(#chat_event{direction = out, type = chat, to = To}) -> {notify, jid:to_bare(To)};
recipient(#chat_event{direction = out, type = groupchat, to = To}) -> {notify, jid:to_bare(To)};
recipient(#unack_msg_event{to = To}) -> {notify, jid:to_bare(To)};
recipient(_) -> ignore.

-spec event_name(outcome()) -> atom().
event_name(published) -> mod_event_pusher_push_published;
event_name(skipped) -> mod_event_pusher_push_skipped;
event_name(failed) -> mod_event_pusher_push_failed;
event_name(disabled) -> mod_event_pusher_push_disabled.

%% `<prefix>.@HOST@' or a plain domain.
pubsub_host_template() ->
    #option{type = string, validate = subdomain_template,
            process = fun mongoose_subdomain_utils:make_subdomain_pattern/1}.

forget_domain(#{host_type := HostType}, #{domain := Domain}) ->
    mod_event_pusher_push_backend:remove_domain(HostType, Domain).
