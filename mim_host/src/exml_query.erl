%% @doc The test host's `exml_query': navigation in exml 4 trees
%% (`#xmlel{}' with a map of attributes), with exml's API and semantics.
-module(exml_query).

-include("exml.hrl").

-export([path/2, path/3, paths/2]).
-export([subelement/2, subelement/3]).
-export([subelement_with_ns/2, subelement_with_ns/3]).
-export([subelement_with_attr/3, subelement_with_attr/4]).
-export([subelement_with_name_and_ns/3, subelement_with_name_and_ns/4]).
-export([subelements/2, subelements_with_ns/2, subelements_with_name_and_ns/3,
         subelements_with_attr/3]).
-export([attr/2, attr/3, cdata/1]).

-type path() :: [cdata
                 | {attr, binary()}
                 | {element, binary()}
                 | {element_with_ns, binary()}
                 | {element_with_ns, binary(), binary()}
                 | {element_with_attr, binary(), binary()}].
-export_type([path/0]).

%%--------------------------------------------------------------------
%% Paths
%%--------------------------------------------------------------------

%% @equiv path(Element, Path, undefined)
-spec path(exml:element(), path()) -> exml:element() | binary() | undefined.
path(Element, Path) ->
    path(Element, Path, undefined).

%% @doc Follows `Path' through the first matching child at each step; the
%% last step may pick an attribute or the cdata. `Default' when a step fails.
-spec path(exml:element() | undefined, path(), Default) ->
          exml:element() | binary() | Default.
path(#xmlel{} = El, [], _Default) ->
    El;
path(#xmlel{} = El, [cdata], _Default) ->
    cdata(El);
path(#xmlel{} = El, [{attr, Name}], Default) ->
    attr(El, Name, Default);
path(#xmlel{} = El, [Step | Rest], Default) when is_tuple(Step) ->
    case children_at(El, Step) of
        [Child | _] -> path(Child, Rest, Default);
        [] -> Default
    end;
path(_, _, Default) ->
    Default.

%% @doc Every element, attribute value or cdata reachable by `Path'.
-spec paths(exml:element(), path()) -> [exml:element() | binary()].
paths(#xmlel{} = El, []) ->
    [El];
paths(#xmlel{} = El, [cdata]) ->
    [cdata(El)];
paths(#xmlel{attrs = Attrs}, [{attr, Name}]) ->
    case Attrs of
        #{Name := Value} -> [Value];
        #{} -> []
    end;
paths(#xmlel{} = El, [{Kind, _} = Step | Rest]) when Kind =:= element; Kind =:= element_with_ns ->
    lists:append([paths(Child, Rest) || Child <- children_at(El, Step)]);
paths(#xmlel{} = El, [{_, _, _} = Step | Rest]) ->
    lists:append([paths(Child, Rest) || Child <- children_at(El, Step)]);
paths(#xmlel{} = El, Path) ->
    erlang:error(invalid_path, [El, Path]).

%%--------------------------------------------------------------------
%% Sub-elements
%%--------------------------------------------------------------------

-spec subelement(exml:element(), binary()) -> exml:element() | undefined.
subelement(El, Name) ->
    subelement(El, Name, undefined).

-spec subelement(exml:element(), binary(), Default) -> exml:element() | Default.
subelement(El, Name, Default) ->
    first(subelements(El, Name), Default).

-spec subelement_with_ns(exml:element(), binary()) -> exml:element() | undefined.
subelement_with_ns(El, NS) ->
    subelement_with_ns(El, NS, undefined).

-spec subelement_with_ns(exml:element(), binary(), Default) -> exml:element() | Default.
subelement_with_ns(El, NS, Default) ->
    first(subelements_with_ns(El, NS), Default).

-spec subelement_with_attr(exml:element(), binary(), binary()) -> exml:element() | undefined.
subelement_with_attr(El, AttrName, AttrValue) ->
    subelement_with_attr(El, AttrName, AttrValue, undefined).

-spec subelement_with_attr(exml:element(), binary(), binary(), Default) ->
          exml:element() | Default.
subelement_with_attr(El, AttrName, AttrValue, Default) ->
    first(subelements_with_attr(El, AttrName, AttrValue), Default).

-spec subelement_with_name_and_ns(exml:element(), binary(), binary()) ->
          exml:element() | undefined.
subelement_with_name_and_ns(El, Name, NS) ->
    subelement_with_name_and_ns(El, Name, NS, undefined).

-spec subelement_with_name_and_ns(exml:element(), binary(), binary(), Default) ->
          exml:element() | Default.
subelement_with_name_and_ns(El, Name, NS, Default) ->
    first(subelements_with_name_and_ns(El, Name, NS), Default).

-spec subelements(exml:element(), binary()) -> [exml:element()].
subelements(#xmlel{children = Children}, Name) ->
    [C || #xmlel{name = N} = C <- Children, N =:= Name].

-spec subelements_with_ns(exml:element(), binary()) -> [exml:element()].
subelements_with_ns(#xmlel{children = Children}, NS) ->
    [C || #xmlel{} = C <- Children, attr(C, <<"xmlns">>) =:= NS].

-spec subelements_with_name_and_ns(exml:element(), binary(), binary()) -> [exml:element()].
subelements_with_name_and_ns(#xmlel{children = Children}, Name, NS) ->
    [C || #xmlel{name = N} = C <- Children, N =:= Name, attr(C, <<"xmlns">>) =:= NS].

-spec subelements_with_attr(exml:element(), binary(), binary()) -> [exml:element()].
subelements_with_attr(#xmlel{children = Children}, AttrName, Value) ->
    [C || #xmlel{} = C <- Children, attr(C, AttrName) =:= Value].

%%--------------------------------------------------------------------
%% Attributes and cdata
%%--------------------------------------------------------------------

-spec attr(exml:element(), binary()) -> binary() | undefined.
attr(El, Name) ->
    attr(El, Name, undefined).

-spec attr(exml:element(), binary(), Default) -> binary() | Default.
attr(#xmlel{attrs = Attrs}, Name, Default) ->
    maps:get(Name, Attrs, Default).

%% @doc The concatenated text children of the element (not of descendants).
-spec cdata(exml:element()) -> binary().
cdata(#xmlel{children = Children}) ->
    iolist_to_binary([Content || #xmlcdata{content = Content} <- Children]).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec children_at(exml:element(), tuple()) -> [exml:element()].
children_at(El, {element, Name}) -> subelements(El, Name);
children_at(El, {element_with_ns, NS}) -> subelements_with_ns(El, NS);
children_at(El, {element_with_ns, Name, NS}) -> subelements_with_name_and_ns(El, Name, NS);
children_at(El, {element_with_attr, AttrName, Value}) -> subelements_with_attr(El, AttrName, Value);
children_at(_El, _Step) -> [].

-spec first([exml:element()], Default) -> exml:element() | Default.
first([El | _], _Default) -> El;
first([], Default) -> Default.
