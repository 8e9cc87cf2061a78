%% @doc The `urn:xmpp:push:0' requests (doc/compatibility.md §7): a request element is
%% checked step by step into a command map, then the command is carried out.
-module(mod_event_pusher_push_iq).

-include("jlib.hrl").

-export([handle/3, to_command/1]).

-type command() :: #{action := enable | disable,
                     service := jid:jid(),
                     node := mod_event_pusher_push:pubsub_node() | undefined,
                     options := mod_event_pusher_push:form()}.
-export_type([command/0]).

%% A step reads one thing from the request into the command, or refuses it.
-type step() :: fun((exml:element(), map()) -> {ok, map()} | refused).

%% @doc Answers one push IQ; only `set' may change anything.
-spec handle(mongoose_acc:t(), jid:jid(), #iq{}) -> #iq{}.
handle(Acc, From, #iq{type = set, sub_el = Request} = IQ) ->
    case to_command(Request) of
        {ok, Command} ->
            ok = execute(Acc, From, Command),
            IQ#iq{type = result, sub_el = []};
        refused ->
            IQ#iq{type = error, sub_el = [Request, mongoose_xmpp_errors:bad_request()]}
    end;
handle(_Acc, _From, #iq{sub_el = Request} = IQ) ->
    IQ#iq{type = error, sub_el = [Request, mongoose_xmpp_errors:not_allowed()]}.

%% @doc The command a request element asks for, or `refused' (bad-request).
-spec to_command(exml:element()) -> {ok, command()} | refused.
to_command(#xmlel{name = <<"enable">>} = El) ->
    run_steps(El, [fun service/2, fun required_node/2, fun options/2], #{action => enable});
to_command(#xmlel{name = <<"disable">>} = El) ->
    run_steps(El, [fun service/2, fun optional_node/2], #{action => disable, options => #{}});
to_command(_) ->
    refused.

%%--------------------------------------------------------------------
%% Steps
%%--------------------------------------------------------------------

-spec run_steps(exml:element(), [step()], map()) -> {ok, command()} | refused.
run_steps(El, Steps, Start) ->
    lists:foldl(fun(Step, {ok, SoFar}) -> Step(El, SoFar);
                   (_Step, refused) -> refused
                end, {ok, Start}, Steps).

%% `jid' must parse and name a domain; only its bare part is kept.
service(El, Command) ->
    case jid:from_binary(exml_query:attr(El, <<"jid">>, <<>>)) of
        #jid{lserver = Domain} = JID when Domain =/= <<>> ->
            {ok, Command#{service => jid:to_bare(JID)}};
        _ ->
            refused
    end.

%% enable: a missing `node' counts as empty, and empty is refused.
required_node(El, Command) ->
    case exml_query:attr(El, <<"node">>, <<>>) of
        <<>> -> refused;
        Node -> {ok, Command#{node => Node}}
    end.

%% disable: `node' may be left out (every node of the service), not empty.
optional_node(El, Command) ->
    case exml_query:attr(El, <<"node">>) of
        <<>> -> refused;
        Node -> {ok, Command#{node => Node}}
    end.

%% The publish options: no form at all, or a submit form of the
%% publish-options type where each field has exactly one value.
options(El, Command) ->
    case mongoose_data_forms:find_form(El) of
        undefined ->
            {ok, Command#{options => #{}}};
        FormEl ->
            case mongoose_data_forms:parse_form_fields(FormEl) of
                #{type := <<"submit">>, ns := ?NS_PUBSUB_PUB_OPTIONS, kvs := Fields} ->
                    one_value_each(maps:to_list(Fields), Command, #{});
                _ ->
                    refused
            end
    end.

one_value_each([], Command, Options) ->
    {ok, Command#{options => Options}};
one_value_each([{Var, [Value]} | More], Command, Options) ->
    one_value_each(More, Command, Options#{Var => Value});
one_value_each(_MultiOrNone, _Command, _Options) ->
    refused.

%%--------------------------------------------------------------------
%% Carrying out
%%--------------------------------------------------------------------

-spec execute(mongoose_acc:t(), jid:jid(), command()) -> ok.
execute(Acc, From, #{action := enable, service := PubSub, node := Node, options := Options}) ->
    HostType = mongoose_acc:host_type(Acc),
    ok = mod_event_pusher_push_backend:enable(HostType, jid:to_bare(From), PubSub, Node,
                                              Options),
    mod_event_pusher_push_sessions:remember(Acc, From, {PubSub, Node, Options});
execute(Acc, From, #{action := disable, service := PubSub, node := Node}) ->
    mod_event_pusher_push:disable_node(mongoose_acc:host_type(Acc), From, PubSub, Node).
