%% @doc The default push plugin (SPEC.md §7): notify offline recipients of
%% messages with a body, with a summary form (message count, sender, body),
%% through the XEP-0357 pubsub publish IQ or, for virtual pubsub hosts, the
%% `push_notifications' hook.
-module(mod_event_pusher_push_plugin_defaults).
-behaviour(mod_event_pusher_push_plugin).

-include("mongoose.hrl").
-include("jlib.hrl").
-include("mod_event_pusher_events.hrl").

-export([prepare_notification/2, should_publish/3, publish_notification/4]).

%% Run by a pool worker: the reply to a publish IQ.
-export([handle_publish_response/5]).

-define(SUMMARY_FORM_TYPE, <<"urn:xmpp:push:summary">>).

%%--------------------------------------------------------------------
%% Plugin callbacks
%%--------------------------------------------------------------------

%% @doc Chat events only, when the recipient exists (if the auth backend can
%% tell) and has no available session; minus the services this stanza was
%% already published to (several hooks may see one message).
-spec should_publish(mongoose_acc:t(), mod_event_pusher:event(),
                     [mod_event_pusher_push:publish_service()]) ->
          [mod_event_pusher_push:publish_service()].
should_publish(Acc, #chat_event{to = To}, Services) ->
    case recipient_unreachable(Acc, To) of
        true -> Services -- already_published(Acc);
        false -> []
    end;
should_publish(_Acc, _Event, _Services) ->
    [].

%% @doc The summary of the accumulator's message; `skip' without a
%% non-empty body.
-spec prepare_notification(mongoose_acc:t(), mod_event_pusher:event()) ->
          mod_event_pusher_push_plugin:push_payload() | skip.
prepare_notification(Acc, _Event) ->
    {From, To, Packet} = mongoose_acc:packet(Acc),
    case exml_query:path(Packet, [{element, <<"body">>}, cdata]) of
        undefined -> skip;
        <<>> -> skip;
        Body ->
            [{<<"message-count">>, integer_to_binary(unread_count(Acc, To))},
             {<<"last-message-sender">>, sender_id(From, Packet)},
             {<<"last-message-body">>, Body}]
    end.

%% @doc Publishes to each service; records them in the accumulator so that
%% the same stanza does not notify them twice.
-spec publish_notification(mongoose_acc:t(), mod_event_pusher:event(),
                           mod_event_pusher_push_plugin:push_payload(),
                           [mod_event_pusher_push:publish_service()]) -> mongoose_acc:t().
publish_notification(Acc, _Event, Payload, Services) ->
    To = mongoose_acc:to_jid(Acc),
    HostType = mongoose_acc:host_type(Acc),
    lists:foreach(
      fun({PubSub, _Node, _Form} = Service) ->
              case mod_event_pusher_push:is_virtual_pubsub_host(HostType, To#jid.lserver,
                                                                PubSub#jid.lserver) of
                  true -> publish_via_hook(Acc, HostType, To, Service, Payload);
                  false -> publish_via_pubsub(HostType, To, Service, Payload)
              end
      end, Services),
    mongoose_acc:append(event_pusher, published_services, Services, Acc).

%%--------------------------------------------------------------------
%% Publish replies (in a pool worker)
%%--------------------------------------------------------------------

%% @doc A result counts as published; an error of type cancel disables the
%% node (the service will never take it); other errors and timeouts are
%% logged and counted (ours: MongooseIM ignores them).
-spec handle_publish_response(mongooseim:host_type(), jid:jid(), jid:jid(),
                              mod_event_pusher_push:pubsub_node(), #iq{} | timeout) -> ok.
handle_publish_response(HostType, _Recipient, PubSub, Node, #iq{type = result}) ->
    mod_event_pusher_push:count(HostType, published, #{pubsub_jid => jid:to_binary(PubSub),
                                                       node => Node});
handle_publish_response(HostType, Recipient, PubSub, Node, #iq{type = error, sub_el = SubEl}) ->
    Error = error_element(SubEl),
    case exml_query:attr(Error, <<"type">>) of
        <<"cancel">> ->
            ?LOG_WARNING(#{what => push_node_disabled, host_type => HostType,
                           user => jid:to_binary(jid:to_bare(Recipient)),
                           pubsub_jid => jid:to_binary(PubSub), node => Node,
                           reason => error_condition(Error)}),
            disable(HostType, Recipient, PubSub, Node);
        Type ->
            ?LOG_WARNING(#{what => push_publish_failed, host_type => HostType,
                           pubsub_jid => jid:to_binary(PubSub), node => Node,
                           error_type => Type, reason => error_condition(Error)}),
            mod_event_pusher_push:count(HostType, failed, #{reason => error_reply,
                                                            pubsub_jid => jid:to_binary(PubSub),
                                                            node => Node})
    end;
handle_publish_response(HostType, _Recipient, PubSub, Node, timeout) ->
    ?LOG_WARNING(#{what => push_publish_timeout, host_type => HostType,
                   pubsub_jid => jid:to_binary(PubSub), node => Node}),
    mod_event_pusher_push:count(HostType, failed, #{reason => timeout,
                                                    pubsub_jid => jid:to_binary(PubSub),
                                                    node => Node}).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec recipient_unreachable(mongoose_acc:t(), jid:jid()) -> boolean().
recipient_unreachable(Acc, To) ->
    HostType = mongoose_acc:host_type(Acc),
    %% An auth backend that cannot answer does not stop the notification.
    try ejabberd_auth:does_user_exist(HostType, To, stored) of
        false -> false;
        true -> ejabberd_sm:is_offline(To)
    catch
        _:_ -> ejabberd_sm:is_offline(To)
    end.

already_published(Acc) ->
    mongoose_acc:get(event_pusher, published_services, [], Acc).

-spec unread_count(mongoose_acc:t(), jid:jid()) -> integer().
unread_count(Acc, To) ->
    mongoose_acc:get(inbox, unread_count, 1, mongoose_hooks:inbox_unread_count(Acc, To)).

%% A room occupant is told apart by its nick: the full JID; a chat partner
%% by the bare JID.
-spec sender_id(jid:jid(), exml:element()) -> binary().
sender_id(From, Packet) ->
    case exml_query:attr(Packet, <<"type">>) of
        <<"groupchat">> -> jid:to_binary(jid:to_lower(From));
        _ -> jid:to_bare_binary(jid:to_lower(From))
    end.

publish_via_hook(Acc0, HostType, To, {PubSub, Node, Form}, Payload) ->
    Acc = mongoose_acc:set(push_notifications, pubsub_jid, PubSub, Acc0),
    case mongoose_hooks:push_notifications(HostType, Acc, [maps:from_list(Payload)], Form) of
        {error, device_not_registered} ->
            disable(HostType, To, PubSub, Node);
        {error, Reason} ->
            ?LOG_WARNING(#{what => push_notifications_hook_failed, host_type => HostType,
                           pubsub_jid => jid:to_binary(PubSub), node => Node, reason => Reason}),
            mod_event_pusher_push:count(HostType, failed, #{reason => hook_error});
        _ ->
            mod_event_pusher_push:count(HostType, published,
                                        #{pubsub_jid => jid:to_binary(PubSub), node => Node})
    end.

%% The IQ goes from the recipient's domain JID (so the reply comes back to
%% this server), routed by a pool worker, never by the caller.
publish_via_pubsub(HostType, To, {PubSub, Node, Form}, Payload) ->
    IQ = publish_iq(Node, Form, Payload),
    From = jid:make_noprep(<<>>, To#jid.lserver, <<>>),
    Acc = mongoose_acc:new(#{location => #{mfa => {?MODULE, ?FUNCTION_NAME, ?FUNCTION_ARITY},
                                           line => ?LINE, file => ?FILE},
                              host_type => HostType,
                             lserver => To#jid.lserver, element => jlib:iq_to_xml(IQ),
                             from_jid => To, to_jid => PubSub}),
    OnReply = fun(_From, _To, ReplyAcc, Reply) ->
                      mod_event_pusher_push:cast(HostType, fun ?MODULE:handle_publish_response/5,
                                                 [HostType, To, PubSub, Node, Reply]),
                      ReplyAcc
              end,
    mod_event_pusher_push:cast(HostType, fun ejabberd_local:route_iq/6,
                               [From, PubSub, Acc, IQ, OnReply, iq_timeout()]).

%% MongooseIM's 32 s unless the application env says otherwise (tests).
iq_timeout() ->
    application:get_env(mongoose_event_pusher, push_iq_timeout, undefined).

disable(HostType, Recipient, PubSub, Node) ->
    Result = mod_event_pusher_push:disable_node(HostType, Recipient, PubSub, Node),
    mod_event_pusher_push:count(HostType, disabled, #{pubsub_jid => jid:to_binary(PubSub),
                                                      node => Node}),
    case Result of
        ok -> ok;
        {error, Reason} ->
            ?LOG_ERROR(#{what => push_node_disable_failed, host_type => HostType,
                         pubsub_jid => jid:to_binary(PubSub), node => Node, reason => Reason})
    end.

-spec publish_iq(mod_event_pusher_push:pubsub_node(), mod_event_pusher_push:form(),
                 mod_event_pusher_push_plugin:push_payload()) -> #iq{}.
publish_iq(Node, Form, Payload) ->
    Notification = #xmlel{name = <<"notification">>, attrs = #{<<"xmlns">> => ?NS_PUSH},
                          children = [submit_form(?SUMMARY_FORM_TYPE, Payload)]},
    Publish = #xmlel{name = <<"publish">>, attrs = #{<<"node">> => Node},
                     children = [#xmlel{name = <<"item">>, children = [Notification]}]},
    #iq{type = set,
        sub_el = [#xmlel{name = <<"pubsub">>, attrs = #{<<"xmlns">> => ?NS_PUBSUB},
                         children = [Publish | publish_options(maps:to_list(Form))]}]}.

publish_options([]) ->
    [];
publish_options(Fields) ->
    [#xmlel{name = <<"publish-options">>,
            children = [submit_form(?NS_PUBSUB_PUB_OPTIONS, Fields)]}].

submit_form(FormType, Fields) ->
    mongoose_data_forms:form(#{ns => FormType, type => <<"submit">>,
                               fields => [#{var => Name, values => [Value]}
                                          || {Name, Value} <- Fields]}).

error_element(Els) when is_list(Els) ->
    case [El || #xmlel{name = <<"error">>} = El <- Els] of
        [Error | _] -> Error;
        [] -> #xmlel{name = <<"error">>}
    end;
error_element(#xmlel{name = <<"error">>} = El) ->
    El;
error_element(_) ->
    #xmlel{name = <<"error">>}.

error_condition(#xmlel{children = Children}) ->
    case [Name || #xmlel{name = Name, attrs = #{<<"xmlns">> := ?NS_STANZAS}} <- Children] of
        [Condition | _] -> Condition;
        [] -> undefined
    end.
