%% @doc The test host's `exml': exml 4's types, printing and element
%% helpers, in plain Erlang (exml itself is a C++ NIF).
%%
%% Printing follows exml: attributes in single quotes (double quotes when the
%% value holds a single quote), `<el/>' for an element without children, and
%% `& < > " ''' escaped in text. `parse/1' (through xmerl) is for tests that
%% read XML from the wire.
-module(exml).

-include("exml.hrl").
-include_lib("xmerl/include/xmerl.hrl").

-export([to_binary/1, to_iolist/1, to_list/1, parse/1]).
-export([append_children/2, upsert_attr_value/3, remove_attr/2, remove_cdata/1,
         filter_children/2, upsert_child/2, insert_new_child/2, xml_sort/1]).

-type attrs() :: #{binary() => binary()}.
-type cdata() :: #xmlcdata{}.
-type element() :: #xmlel{}.
-type child() :: element() | cdata().
-type item() :: element() | cdata() | #xmlstreamstart{} | #xmlstreamend{}.

-export_type([attrs/0, cdata/0, element/0, child/0, item/0]).

%%--------------------------------------------------------------------
%% Printing and parsing
%%--------------------------------------------------------------------

-spec to_binary(item() | [item()]) -> binary().
to_binary(Item) ->
    iolist_to_binary(to_iolist(Item)).

-spec to_list(item() | [item()]) -> string().
to_list(Item) ->
    binary_to_list(to_binary(Item)).

-spec to_iolist(item() | [item()]) -> iodata().
to_iolist(Items) when is_list(Items) ->
    [to_iolist(Item) || Item <- Items];
to_iolist(#xmlel{name = Name, attrs = Attrs, children = []}) ->
    [$<, Name, attrs_to_iolist(Attrs), "/>"];
to_iolist(#xmlel{name = Name, attrs = Attrs, children = Children}) ->
    [$<, Name, attrs_to_iolist(Attrs), $>, to_iolist(Children), "</", Name, $>];
to_iolist(#xmlcdata{content = Content, style = cdata}) ->
    ["<![CDATA[", Content, "]]>"];
to_iolist(#xmlcdata{content = Content}) ->
    escape(iolist_to_binary(Content), none);
to_iolist(#xmlstreamstart{name = Name, attrs = Attrs}) ->
    [$<, Name, attrs_to_iolist(Attrs), $>];
to_iolist(#xmlstreamend{name = Name}) ->
    ["</", Name, $>].

%% @doc Parses one XML document into an element. Whitespace-only text
%% between elements is dropped, as exml does.
-spec parse(binary() | [binary()]) -> {ok, element()} | {error, binary()}.
parse(XML) ->
    Chars = unicode:characters_to_list(iolist_to_binary(XML)),
    try xmerl_scan:string(Chars, [{quiet, true}]) of
        {Doc, _Rest} -> {ok, from_xmerl(Doc)}
    catch
        exit:Reason -> {error, iolist_to_binary(io_lib:format("~p", [Reason]))}
    end.

%%--------------------------------------------------------------------
%% Element helpers
%%--------------------------------------------------------------------

-spec append_children(element(), [child()]) -> element().
append_children(#xmlel{children = Children} = El, Extra) ->
    El#xmlel{children = Children ++ Extra}.

-spec upsert_attr_value(element(), binary(), binary()) -> element().
upsert_attr_value(#xmlel{attrs = Attrs} = El, Key, Value) ->
    El#xmlel{attrs = Attrs#{Key => Value}}.

-spec remove_attr(element(), binary()) -> element().
remove_attr(#xmlel{attrs = Attrs} = El, Key) ->
    El#xmlel{attrs = maps:remove(Key, Attrs)}.

-spec remove_cdata(element()) -> element().
remove_cdata(El) ->
    filter_children(El, fun(Child) -> not is_record(Child, xmlcdata) end).

-spec filter_children(element(), fun((child()) -> boolean())) -> element().
filter_children(#xmlel{children = Children} = El, Pred) ->
    El#xmlel{children = lists:filter(Pred, Children)}.

%% @doc Replaces the first child with the same name, or appends.
-spec upsert_child(element(), element()) -> element().
upsert_child(#xmlel{children = Children} = El, #xmlel{name = Name} = New) ->
    El#xmlel{children = replace_or_append(Children, Name, New)}.

%% @doc Prepends the child unless one with the same name exists.
-spec insert_new_child(element(), element()) -> element().
insert_new_child(#xmlel{children = Children} = El, #xmlel{name = Name} = New) ->
    case [C || #xmlel{name = N} = C <- Children, N =:= Name] of
        [] -> El#xmlel{children = [New | Children]};
        _ -> El
    end.

%% @doc Sorts children recursively, so that equal documents compare equal.
-spec xml_sort(item() | [item()]) -> item() | [item()].
xml_sort(#xmlel{children = Children} = El) ->
    El#xmlel{children = [xml_sort(C) || C <- Children]};
xml_sort(Items) when is_list(Items) ->
    lists:sort([xml_sort(I) || I <- Items]);
xml_sort(Other) ->
    Other.

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec attrs_to_iolist(attrs()) -> iodata().
attrs_to_iolist(Attrs) ->
    [attr_to_iolist(Name, Value) || {Name, Value} <- lists:sort(maps:to_list(Attrs))].

-spec attr_to_iolist(binary(), binary()) -> iodata().
attr_to_iolist(Name, Value) ->
    case binary:match(Value, <<"'">>) of
        nomatch -> [$\s, Name, "='", escape(Value, $"), $'];
        _ -> [$\s, Name, "=\"", escape(Value, $'), $"]
    end.

%% Escapes the five XML special characters, except `Keep' (the quote that
%% cannot end the attribute value it is in).
-spec escape(binary(), char() | none) -> iodata().
escape(Bin, Keep) ->
    [escape_char(C, Keep) || <<C>> <= Bin].

-spec escape_char(byte(), char() | none) -> iodata() | byte().
escape_char(Keep, Keep) -> Keep;
escape_char($&, _) -> <<"&amp;">>;
escape_char($<, _) -> <<"&lt;">>;
escape_char($>, _) -> <<"&gt;">>;
escape_char($", _) -> <<"&quot;">>;
escape_char($', _) -> <<"&apos;">>;
escape_char(C, _) -> C.

-spec replace_or_append([child()], binary(), element()) -> [child()].
replace_or_append([#xmlel{name = Name} | Rest], Name, New) ->
    [New | Rest];
replace_or_append([Child | Rest], Name, New) ->
    [Child | replace_or_append(Rest, Name, New)];
replace_or_append([], _Name, New) ->
    [New].

-spec from_xmerl(#xmlElement{}) -> element().
from_xmerl(#xmlElement{name = Name, attributes = Attrs, content = Content}) ->
    %% xmerl keeps xmlns declarations among the attributes, as exml does.
    AttrMap = maps:from_list([{to_bin(N), to_bin(V)} || #xmlAttribute{name = N, value = V} <- Attrs]),
    #xmlel{name = to_bin(Name), attrs = AttrMap, children = children_from_xmerl(Content)}.

%% Adjacent text nodes (text, entities, CDATA sections) become one cdata.
-spec children_from_xmerl([term()]) -> [child()].
children_from_xmerl([#xmlElement{} = El | Rest]) ->
    [from_xmerl(El) | children_from_xmerl(Rest)];
children_from_xmerl([#xmlText{} | _] = Nodes) ->
    {Texts, Rest} = lists:splitwith(fun(N) -> is_record(N, xmlText) end, Nodes),
    Text = unicode:characters_to_binary([V || #xmlText{value = V} <- Texts]),
    case string:trim(Text) of
        <<>> -> children_from_xmerl(Rest);
        _ -> [#xmlcdata{content = Text} | children_from_xmerl(Rest)]
    end;
children_from_xmerl([_Other | Rest]) ->
    children_from_xmerl(Rest);
children_from_xmerl([]) ->
    [].

-spec to_bin(atom() | string()) -> binary().
to_bin(A) when is_atom(A) -> atom_to_binary(A, utf8);
to_bin(S) -> unicode:characters_to_binary(S).
