%% @doc XEP-0357 push notifications for the event pusher (SPEC.md §7).
%%
%% A client enables push by sending `<enable/>' in `urn:xmpp:push:0' naming a
%% pubsub service and node (an app server). The subscription is stored
%% (`mod_event_pusher_push_backend') and remembered in the session info under
%% `publish_service'. When a message reaches a user who is offline, or is left
%% unacknowledged, the `push_event' handler runs the plugin flow
%% (`mod_event_pusher_push_plugin'), which publishes a summary form to each
%% enabled node, or runs the `push_notifications' hook for virtual pubsub
%% hosts.
%%
%% XMPP routing stays in the BEAM, but never in the user's process: the
%% publish IQ is routed by the `pusher_push' generic worker pool (the `wpool'
%% option), and the reply is handled there too.
-module(mod_event_pusher_push).

%% No `-behaviour(gen_mod)': see mod_event_pusher.

-include("mod_event_pusher_events.hrl").
-include("mongoose.hrl").
-include("session.hrl").
-include("jlib.hrl").
-include("mongoose_config_spec.hrl").

%% gen_mod callbacks
-export([start/2, stop/1, hooks/1, config_spec/0, supported_features/0, instrumentation/1]).

%% mongoose_module_metrics callback
-export([config_metrics/1]).

%% Hook handlers and IQ handler
-export([push_event/3, remove_user/3, remove_domain/3, iq_handler/5]).

%% Used by plugins
-export([cast/3, is_virtual_pubsub_host/3, disable_node/4, count/3]).

-type pubsub_node() :: binary().
-type form() :: #{binary() => binary()}.
-type publish_service() :: {PubSub :: jid:jid(), Node :: pubsub_node(), Form :: form()}.
%% Our counters (instrumentation events, one per outcome).
-type outcome() :: published | skipped | failed | disabled.
-export_type([pubsub_node/0, form/0, publish_service/0, outcome/0]).

-define(SESSION_KEY, publish_service).
-define(POOL_TAG, pusher_push).

%%--------------------------------------------------------------------
%% gen_mod callbacks
%%--------------------------------------------------------------------

%% @doc Fails at once for a backend this build does not have (rdbms), then
%% starts the worker pool, the storage, the plugin and the IQ handlers.
-spec start(mongooseim:host_type(), gen_mod:module_opts()) -> ok.
start(HostType, #{backend := Backend, wpool := WpoolOpts, iqdisc := IQDisc} = Opts) ->
    ok = mod_event_pusher_push_backend:check_supported(Backend),
    ?LOG_INFO(#{what => event_pusher_push_starting, host_type => HostType, backend => Backend}),
    {ok, _} = mongoose_wpool:start(generic, HostType, ?POOL_TAG, maps:to_list(WpoolOpts)),
    ok = mod_event_pusher_push_backend:init(HostType, Opts),
    ok = mod_event_pusher_push_plugin:init(HostType, Opts),
    gen_iq_handler:add_iq_handler_for_domain(HostType, ?NS_PUSH, ejabberd_local,
                                             fun ?MODULE:iq_handler/5, #{}, IQDisc),
    gen_iq_handler:add_iq_handler_for_domain(HostType, ?NS_PUSH, ejabberd_sm,
                                             fun ?MODULE:iq_handler/5, #{}, IQDisc),
    ok.

-spec stop(mongooseim:host_type()) -> ok.
stop(HostType) ->
    gen_iq_handler:remove_iq_handler_for_domain(HostType, ?NS_PUSH, ejabberd_sm),
    gen_iq_handler:remove_iq_handler_for_domain(HostType, ?NS_PUSH, ejabberd_local),
    mongoose_wpool:stop(generic, HostType, ?POOL_TAG),
    ok.

-spec hooks(mongooseim:host_type()) -> [gen_hook:hook_tuple()].
hooks(HostType) ->
    [{remove_user, HostType, fun ?MODULE:remove_user/3, #{}, 90},
     {remove_domain, HostType, fun ?MODULE:remove_domain/3, #{}, 50},
     {push_event, HostType, fun ?MODULE:push_event/3, #{}, 50}].

%% @doc MongooseIM's options. `backend' takes the names MongooseIM knows;
%% rdbms is refused at start (not at parse time) with a readable error.
-spec config_spec() -> mongoose_config_spec:config_section().
config_spec() ->
    VirtualHost = #option{type = string, validate = subdomain_template,
                          process = fun mongoose_subdomain_utils:make_subdomain_pattern/1},
    Wpool = mongoose_config_spec:wpool(#{<<"strategy">> => available_worker}),
    #section{
       items = #{<<"iqdisc">> => mongoose_config_spec:iqdisc(),
                 <<"backend">> => #option{type = atom, validate = {enum, [mnesia, rdbms]}},
                 <<"wpool">> => Wpool#section{include = always},
                 <<"plugin_module">> => #option{type = atom, validate = module},
                 <<"virtual_pubsub_hosts">> => #list{items = VirtualHost}},
       defaults = #{<<"iqdisc">> => one_queue,
                    <<"backend">> => mnesia,
                    <<"plugin_module">> => mod_event_pusher_push_plugin:default_plugin_module(),
                    <<"virtual_pubsub_hosts">> => []}}.

-spec supported_features() -> [atom()].
supported_features() ->
    [dynamic_domains].

%% @doc (ours) One event per outcome of a notification, labelled by host type.
-spec instrumentation(mongooseim:host_type()) -> [mongoose_instrument:spec()].
instrumentation(HostType) ->
    [{event_name(Outcome), #{host_type => HostType}, #{metrics => #{count => spiral}}}
     || Outcome <- [published, skipped, failed, disabled]].

-spec config_metrics(mongooseim:host_type()) -> [{atom(), atom()}].
config_metrics(HostType) ->
    [{backend, gen_mod:get_module_opt(HostType, ?MODULE, backend)}].

%%--------------------------------------------------------------------
%% Hook handlers
%%--------------------------------------------------------------------

%% @doc Messages delivered to a user (chat, groupchat) and messages left
%% unacknowledged may trigger notifications; other events are ignored.
-spec push_event(mod_event_pusher:push_event_acc(), mod_event_pusher:push_event_params(),
                 gen_hook:extra()) -> {ok, mod_event_pusher:push_event_acc()}.
push_event(#{acc := Acc} = HookAcc,
           #{event := #chat_event{direction = out, to = To, type = Type} = Event}, _Extra)
  when Type =:= chat; Type =:= groupchat ->
    {ok, HookAcc#{acc := notify(Acc, Event, jid:to_bare(To))}};
push_event(#{acc := Acc} = HookAcc, #{event := #unack_msg_event{to = To} = Event}, _Extra) ->
    {ok, HookAcc#{acc := notify(Acc, Event, jid:to_bare(To))}};
push_event(HookAcc, _Params, _Extra) ->
    {ok, HookAcc}.

-spec remove_user(mongoose_acc:t(), #{jid := jid:jid()}, gen_hook:extra()) ->
          {ok, mongoose_acc:t()}.
remove_user(Acc, #{jid := #jid{luser = LUser, lserver = LServer}}, #{host_type := HostType}) ->
    case mod_event_pusher_push_backend:disable(HostType, jid:make_noprep(LUser, LServer, <<>>)) of
        ok -> ok;
        {error, Reason} ->
            ?LOG_ERROR(#{what => push_remove_user_failed, host_type => HostType,
                         user => LUser, server => LServer, reason => Reason})
    end,
    {ok, Acc}.

-spec remove_domain(Acc, #{domain := jid:lserver()}, gen_hook:extra()) -> {ok, Acc}
              when Acc :: term().
remove_domain(Acc, #{domain := Domain}, #{host_type := HostType}) ->
    ok = mod_event_pusher_push_backend:remove_domain(HostType, Domain),
    {ok, Acc}.

%% @doc `urn:xmpp:push:0' IQs, to the server or to the user's bare JID.
-spec iq_handler(mongoose_acc:t(), jid:jid(), jid:jid(), #iq{}, gen_hook:extra()) ->
          {mongoose_acc:t(), #iq{}}.
iq_handler(Acc, _From, _To, #iq{type = get, sub_el = SubEl} = IQ, _Extra) ->
    {Acc, IQ#iq{type = error, sub_el = [SubEl, mongoose_xmpp_errors:not_allowed()]}};
iq_handler(Acc, From, _To, #iq{type = set, sub_el = Request} = IQ, _Extra) ->
    HostType = mongoose_acc:host_type(Acc),
    Reply = case parse_request(Request) of
                {enable, PubSub, Node, Form} ->
                    ok = mod_event_pusher_push_backend:enable(HostType, jid:to_bare(From),
                                                              PubSub, Node, Form),
                    store_session_info(From, {PubSub, Node, Form}, Acc),
                    IQ#iq{type = result, sub_el = []};
                {disable, PubSub, Node} ->
                    ok = disable_node(HostType, From, PubSub, Node),
                    IQ#iq{type = result, sub_el = []};
                bad_request ->
                    IQ#iq{type = error, sub_el = [Request, mongoose_xmpp_errors:bad_request()]}
            end,
    {Acc, Reply}.

%%--------------------------------------------------------------------
%% Used by plugins
%%--------------------------------------------------------------------

%% @doc Removes the node (every node of the service when Node is undefined)
%% from storage and from the info of every session of the user.
-spec disable_node(mongooseim:host_type(), UserJID :: jid:jid(), PubSub :: jid:jid(),
                   Node :: pubsub_node() | undefined) -> ok | {error, term()}.
disable_node(HostType, UserJID, PubSub, Node) ->
    BareUser = jid:to_bare(UserJID),
    remove_from_sessions(BareUser, PubSub, Node),
    mod_event_pusher_push_backend:disable(HostType, BareUser, PubSub, Node).

%% @doc Runs `F(A...)' in a worker of the host type's `pusher_push' pool,
%% so that the calling (user's) process never waits for the network.
-spec cast(mongooseim:host_type(), function(), [term()]) -> ok.
cast(HostType, F, A) ->
    _ = mongoose_wpool:cast(generic, HostType, ?POOL_TAG, {erlang, apply, [F, A]}),
    ok.

%% @doc Whether PubSubDomain is one of the virtual pubsub hosts configured
%% for the recipient's host type (a template matches
%% `<prefix>.<RecipientDomain>').
-spec is_virtual_pubsub_host(mongooseim:host_type(), RecipientDomain :: jid:lserver(),
                             PubSubDomain :: jid:lserver()) -> boolean().
is_virtual_pubsub_host(HostType, RecipientDomain, PubSubDomain) ->
    Templates = gen_mod:get_module_opt(HostType, ?MODULE, virtual_pubsub_hosts),
    lists:any(fun(Template) ->
                      mongoose_subdomain_utils:is_subdomain(Template, RecipientDomain,
                                                            PubSubDomain)
              end, Templates).

%% @doc (ours) Emits the instrumentation event of one outcome.
-spec count(mongooseim:host_type(), outcome(), map()) -> ok.
count(HostType, Outcome, Details) ->
    mongoose_instrument:execute(event_name(Outcome), #{host_type => HostType},
                                Details#{count => 1}).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec event_name(outcome()) -> atom().
event_name(published) -> mod_event_pusher_push_published;
event_name(skipped) -> mod_event_pusher_push_skipped;
event_name(failed) -> mod_event_pusher_push_failed;
event_name(disabled) -> mod_event_pusher_push_disabled.

%% The plugin flow of SPEC.md §7: prepare, look up, filter, publish.
-spec notify(mongoose_acc:t(), mod_event_pusher:event(), jid:jid()) -> mongoose_acc:t().
notify(Acc, Event, BareRecipient) ->
    HostType = mongoose_acc:host_type(Acc),
    case mod_event_pusher_push_plugin:prepare_notification(Acc, Event) of
        skip ->
            count(HostType, skipped, #{reason => prepare_notification}),
            Acc;
        Payload ->
            case mod_event_pusher_push_backend:get_publish_services(HostType, BareRecipient) of
                {ok, Services} ->
                    ToPublish = mod_event_pusher_push_plugin:should_publish(Acc, Event, Services),
                    mod_event_pusher_push_plugin:publish_notification(Acc, Event, Payload,
                                                                      ToPublish);
                {error, Reason} ->
                    ?LOG_ERROR(#{what => push_services_lookup_failed, host_type => HostType,
                                 user => jid:to_binary(BareRecipient), reason => Reason}),
                    count(HostType, failed, #{reason => storage}),
                    Acc
            end
    end.

%% enable: J must parse with a domain, N non-empty, the form (if any) a
%% single-valued publish-options submit form. disable: J as for enable, N
%% optional but not empty.
-spec parse_request(exml:element()) ->
          {enable, jid:jid(), pubsub_node(), form()}
          | {disable, jid:jid(), pubsub_node() | undefined} | bad_request.
parse_request(#xmlel{name = <<"enable">>} = Request) ->
    JID = jid:from_binary(exml_query:attr(Request, <<"jid">>, <<>>)),
    Node = exml_query:attr(Request, <<"node">>, <<>>),
    case {JID, Node, parse_form(mongoose_data_forms:find_form(Request))} of
        {error, _, _} -> bad_request;
        {#jid{lserver = <<>>}, _, _} -> bad_request;
        {_, <<>>, _} -> bad_request;
        {_, _, invalid_form} -> bad_request;
        {#jid{}, _, Form} -> {enable, jid:to_bare(JID), Node, Form}
    end;
parse_request(#xmlel{name = <<"disable">>} = Request) ->
    JID = jid:from_binary(exml_query:attr(Request, <<"jid">>, <<>>)),
    case {JID, exml_query:attr(Request, <<"node">>)} of
        {error, _} -> bad_request;
        {#jid{lserver = <<>>}, _} -> bad_request;
        {_, <<>>} -> bad_request;
        {#jid{}, Node} -> {disable, jid:to_bare(JID), Node}
    end;
parse_request(_) ->
    bad_request.

-spec parse_form(exml:element() | undefined) -> form() | invalid_form.
parse_form(undefined) ->
    #{};
parse_form(FormEl) ->
    case mongoose_data_forms:parse_form_fields(FormEl) of
        #{type := <<"submit">>, ns := ?NS_PUBSUB_PUB_OPTIONS, kvs := KVs} ->
            single_values(maps:to_list(KVs), #{});
        _ ->
            invalid_form
    end.

-spec single_values([{binary(), [binary()]}], form()) -> form() | invalid_form.
single_values([], Form) -> Form;
single_values([{Key, [Value]} | Rest], Form) -> single_values(Rest, Form#{Key => Value});
single_values([_ | _], _Form) -> invalid_form.

-spec store_session_info(jid:jid(), publish_service(), mongoose_acc:t()) -> term().
store_session_info(JID, Service, Acc) ->
    SID = mongoose_acc:get(c2s, origin_sid, undefined, Acc),
    ejabberd_sm:store_info(JID, SID, ?SESSION_KEY, Service).

-spec remove_from_sessions(jid:jid(), jid:jid(), pubsub_node() | undefined) -> ok.
remove_from_sessions(BareUser, PubSub, Node) ->
    lists:foreach(
      fun(#session{sid = SID, usr = {_, _, Resource}, info = Info}) ->
              case maps:get(?SESSION_KEY, Info, undefined) of
                  {PubSub, SessionNode, _} when Node =:= undefined; Node =:= SessionNode ->
                      JID = jid:replace_resource(BareUser, Resource),
                      ejabberd_sm:remove_info(JID, SID, ?SESSION_KEY);
                  _ ->
                      ok
              end
      end, ejabberd_sm:get_raw_sessions(BareUser)).
