%% @doc The test host's `jlib': the IQ record conversions, error replies and
%% stanza error elements MongooseIM's modules use, with its semantics:
%% a request's `sub_el' is its one child element, a reply's the list of its
%% children; `iq_to_xml/1' writes `id' and `type' only.
-module(jlib).

-export([iq_query_info/1, iq_query_or_response_info/1, iq_to_xml/1, iq_type_to_binary/1,
         make_result_iq_reply/1, make_error_reply/2, make_error_reply/3,
         stanza_error/3, stanza_error/5, stanza_errort/4, remove_cdata/1,
         replace_from_to/3]).

-include("jlib.hrl").

-type iq() :: #iq{}.
-export_type([iq/0]).

%% @doc A request IQ as `#iq{}'; `reply' for a result/error, `invalid' for a
%% bad type or a request without exactly one namespaced child, `not_iq'.
-spec iq_query_info(exml:element()) -> invalid | not_iq | reply | iq().
iq_query_info(El) ->
    iq_info(El, request).

%% @doc As `iq_query_info/1', but results and errors are parsed too.
-spec iq_query_or_response_info(exml:element()) -> invalid | not_iq | reply | iq().
iq_query_or_response_info(El) ->
    iq_info(El, any).

-spec iq_info(exml:element(), request | any) -> invalid | not_iq | reply | iq().
iq_info(#xmlel{name = <<"iq">>, children = Children} = El, Filter) ->
    Type = iq_type(exml_query:attr(El, <<"type">>, <<>>)),
    Elements = remove_cdata(Children),
    Base = #iq{id = exml_query:attr(El, <<"id">>, <<>>), type = Type,
               lang = exml_query:attr(El, <<"xml:lang">>, <<>>)},
    case {Type, Filter, Elements} of
        {invalid, _, _} ->
            invalid;
        {_, request, _} when Type =:= result; Type =:= error ->
            reply;
        {_, _, _} when Type =:= result; Type =:= error ->
            %% a reply's namespace is its first non-error child's, if only one
            NonError = [E || #xmlel{name = N} = E <- Elements, N =/= <<"error">>],
            XMLNS = case NonError of
                        [One] -> exml_query:attr(One, <<"xmlns">>, <<>>);
                        _ -> <<>>
                    end,
            Base#iq{xmlns = XMLNS, sub_el = Elements};
        {_, _, [Single]} ->
            case exml_query:attr(Single, <<"xmlns">>, <<>>) of
                <<>> -> invalid;
                XMLNS -> Base#iq{xmlns = XMLNS, sub_el = Single}
            end;
        _ ->
            invalid
    end;
iq_info(_, _) ->
    not_iq.

-spec iq_type(binary()) -> get | set | result | error | invalid.
iq_type(<<"get">>) -> get;
iq_type(<<"set">>) -> set;
iq_type(<<"result">>) -> result;
iq_type(<<"error">>) -> error;
iq_type(_) -> invalid.

-spec iq_type_to_binary(atom()) -> binary() | invalid.
iq_type_to_binary(set) -> <<"set">>;
iq_type_to_binary(get) -> <<"get">>;
iq_type_to_binary(result) -> <<"result">>;
iq_type_to_binary(error) -> <<"error">>;
iq_type_to_binary(_) -> invalid.

%% @doc The `<iq/>' element of an `#iq{}' (attributes `id' and `type' only;
%% routing adds `from'/`to').
-spec iq_to_xml(iq()) -> exml:element().
iq_to_xml(#iq{id = ID, type = Type, sub_el = SubEl}) ->
    Children = case SubEl of
                   #xmlel{} -> [SubEl];
                   List when is_list(List) -> List
               end,
    #xmlel{name = <<"iq">>, attrs = #{<<"id">> => ID, <<"type">> => iq_type_to_binary(Type)},
           children = Children}.

-spec make_result_iq_reply(exml:element()) -> exml:element();
                          (iq()) -> iq().
make_result_iq_reply(#xmlel{attrs = Attrs} = El) ->
    El#xmlel{attrs = (swap_from_to(Attrs))#{<<"type">> => <<"result">>}};
make_result_iq_reply(#iq{} = IQ) ->
    IQ#iq{type = result}.

%% @doc An error reply to a stanza: `type="error"', from/to swapped, the
%% error element first, then the original children.
-spec make_error_reply(exml:element() | mongoose_acc:t(), exml:element()) ->
          exml:element() | {mongoose_acc:t(), exml:element() | {error, term()}}.
make_error_reply(#xmlel{} = El, Error) ->
    error_reply(El, Error);
make_error_reply(Acc, Error) ->
    make_error_reply(Acc, mongoose_acc:element(Acc), Error).

%% @doc As MongooseIM: the accumulator is flagged, and an error reply to an
%% error reply is refused (`{error, {already_an_error, Packet, Error}}').
-spec make_error_reply(mongoose_acc:t(), exml:element(), exml:element()) ->
          {mongoose_acc:t(), exml:element() | {error, term()}}.
make_error_reply(Acc, Packet, Error) ->
    case mongoose_acc:get(flag, error, false, Acc) of
        true -> {Acc, {error, {already_an_error, Packet, Error}}};
        false -> {mongoose_acc:set(flag, error, true, Acc), error_reply(Packet, Error)}
    end.

-spec error_reply(exml:element(), exml:element()) -> exml:element().
error_reply(#xmlel{attrs = Attrs, children = Children} = El, Error) ->
    El#xmlel{attrs = (swap_from_to(Attrs))#{<<"type">> => <<"error">>},
             children = [Error | Children]}.

-spec swap_from_to(exml:attrs()) -> exml:attrs().
swap_from_to(Attrs) ->
    Base = maps:without([<<"from">>, <<"to">>], Attrs),
    Swapped = [{New, V} || {Old, New} <- [{<<"from">>, <<"to">>}, {<<"to">>, <<"from">>}],
                           {ok, V} <- [maps:find(Old, Attrs)]],
    maps:merge(Base, maps:from_list(Swapped)).

%% @doc Sets `from' and `to' (`to' removed when undefined).
-spec replace_from_to(jid:jid(), jid:jid() | undefined, exml:element()) -> exml:element().
replace_from_to(From, To, #xmlel{attrs = Attrs} = El) ->
    Attrs1 = Attrs#{<<"from">> => jid:to_binary(From)},
    El#xmlel{attrs = case To of
                         undefined -> maps:remove(<<"to">>, Attrs1);
                         _ -> Attrs1#{<<"to">> => jid:to_binary(To)}
                     end}.

-spec stanza_error(binary(), binary(), binary()) -> exml:element().
stanza_error(Code, Type, Condition) ->
    #xmlel{name = <<"error">>, attrs = #{<<"code">> => Code, <<"type">> => Type},
           children = [#xmlel{name = Condition, attrs = #{<<"xmlns">> => ?NS_STANZAS}}]}.

%% @doc With an application-specific condition element (first child).
-spec stanza_error(binary(), binary(), binary(), binary(), binary()) -> exml:element().
stanza_error(Code, Type, Condition, SpecTag, SpecNs) ->
    #xmlel{children = Children} = Error = stanza_error(Code, Type, Condition),
    Spec = #xmlel{name = SpecTag, attrs = #{<<"xmlns">> => SpecNs}},
    Error#xmlel{children = [Spec | Children]}.

-spec stanza_errort(binary(), binary(), binary(), binary()) -> exml:element().
stanza_errort(Code, Type, Condition, Text) ->
    #xmlel{children = Children} = Error = stanza_error(Code, Type, Condition),
    TextEl = #xmlel{name = <<"text">>, attrs = #{<<"xmlns">> => ?NS_STANZAS},
                    children = [#xmlcdata{content = Text}]},
    Error#xmlel{children = Children ++ [TextEl]}.

-spec remove_cdata([exml:child()]) -> [exml:element()].
remove_cdata(Children) ->
    [E || #xmlel{} = E <- Children].
