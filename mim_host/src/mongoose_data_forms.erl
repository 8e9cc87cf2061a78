%% @doc The test host's `mongoose_data_forms': XEP-0004 data forms as
%% MongooseIM parses and builds them. A parsed form is
%% `#{type => Type, ns => FORM_TYPE, kvs := #{Var => [Value]}}' (`type'
%% absent without a type attribute; `ns' only with exactly one FORM_TYPE
%% value, which then leaves `kvs'; fields without `var' are ignored).
-module(mongoose_data_forms).

-export([find_and_parse_form/1, find_form/1, find_form/2, parse_form/1, parse_form_fields/1,
         is_form/1, is_form/2, form/1]).

-include("jlib.hrl").

-define(NS_DATA_VALIDATE, <<"http://jabber.org/protocol/xdata-validate">>).

-type form() :: #{type => binary(), title => binary(), instructions => binary(),
                  ns => binary(), fields => [field()], reported => [field()],
                  items => [[field()]]}.
-type field() :: #{var => binary(), type => binary(), label => binary(),
                   values => [binary()], options => [option()], validate => validate()}.
-type option() :: binary() | {binary(), binary()}.
-type validate() :: #{method => atom(), datatype => binary()}.
-type kv_map() :: #{binary() => [binary()]}.
-type parsed_form() :: #{type => binary(), ns => binary(), kvs := kv_map()}.

-export_type([form/0, field/0, option/0, validate/0, kv_map/0, parsed_form/0]).

-spec find_and_parse_form(exml:element()) -> parsed_form() | {error, binary()}.
find_and_parse_form(Parent) ->
    parse_found(find_form(Parent)).

-spec parse_found(exml:element() | undefined) -> parsed_form() | {error, binary()}.
parse_found(undefined) -> {error, <<"Form not found">>};
parse_found(Form) -> parse_form_fields(Form).

%% @doc The first `<x xmlns="jabber:x:data"/>' child, or `undefined'.
-spec find_form(exml:element()) -> exml:element() | undefined.
find_form(Parent) ->
    find_form(Parent, undefined).

-spec find_form(exml:element(), Default) -> exml:element() | Default.
find_form(#xmlel{children = Children}, Default) ->
    case [Child || #xmlel{} = Child <- Children, is_form(Child)] of
        [Form | _] -> Form;
        [] -> Default
    end.

-spec parse_form(exml:element()) -> parsed_form() | {error, binary()}.
parse_form(El) ->
    case is_form(El) of
        false -> {error, <<"Invalid form element">>};
        true -> parse_form_fields(El)
    end.

-spec parse_form_fields(exml:element()) -> parsed_form().
parse_form_fields(#xmlel{children = Children} = El) ->
    Base = case exml_query:attr(El, <<"type">>) of
               undefined -> #{};
               Type -> #{type => Type}
           end,
    KVs = maps:from_list([{Var, exml_query:paths(Field, [{element, <<"value">>}, cdata])}
                          || #xmlel{name = <<"field">>} = Field <- Children,
                             Var <- [exml_query:attr(Field, <<"var">>)], Var =/= undefined]),
    case maps:take(<<"FORM_TYPE">>, KVs) of
        {[NS], Rest} -> Base#{ns => NS, kvs => Rest};
        _ -> Base#{kvs => KVs}
    end.

-spec is_form(exml:element()) -> boolean().
is_form(#xmlel{name = <<"x">>, attrs = #{<<"xmlns">> := ?NS_XDATA}}) -> true;
is_form(#xmlel{}) -> false.

-spec is_form(exml:element(), [binary()]) -> boolean().
is_form(#xmlel{attrs = Attrs} = El, Types) ->
    is_form(El) andalso lists:member(maps:get(<<"type">>, Attrs, undefined), Types).

%% @doc Builds `<x xmlns="jabber:x:data" type=T/>' (type `form' by default):
%% title, instructions, the hidden FORM_TYPE field (from `ns'), fields,
%% reported, items, in this order.
-spec form(form()) -> exml:element().
form(Spec) ->
    Children = lists:flatmap(fun(Part) -> children(Part, Spec) end,
                             [title, instructions, ns, fields, reported, items]),
    #xmlel{name = <<"x">>,
           attrs = #{<<"xmlns">> => ?NS_XDATA, <<"type">> => maps:get(type, Spec, <<"form">>)},
           children = Children}.

-spec children(atom(), form()) -> [exml:element()].
children(title, #{title := Title}) ->
    [text_el(<<"title">>, Title)];
children(instructions, #{instructions := Text}) ->
    [text_el(<<"instructions">>, Text)];
children(ns, #{ns := NS}) ->
    [field(#{var => <<"FORM_TYPE">>, type => <<"hidden">>, values => [NS]})];
children(fields, #{fields := Fields}) ->
    [field(F) || F <- Fields];
children(reported, #{reported := Fields}) ->
    [#xmlel{name = <<"reported">>, children = [field(F) || F <- Fields]}];
children(items, #{items := Items}) ->
    [#xmlel{name = <<"item">>, children = [field(F) || F <- Fields]} || Fields <- Items];
children(_, _) ->
    [].

-spec field(field()) -> exml:element().
field(Field) ->
    Attrs = maps:from_list([{atom_to_binary(K), V} || {K, V} <- maps:to_list(Field),
                                                      not lists:member(K, [values, options,
                                                                           validate])]),
    Values = [text_el(<<"value">>, V) || V <- maps:get(values, Field, [])],
    Options = [option(O) || O <- maps:get(options, Field, [])],
    #xmlel{name = <<"field">>, attrs = Attrs,
           children = Values ++ Options ++ validate(maps:get(validate, Field, #{}))}.

-spec option(option()) -> exml:element().
option(Option) ->
    %% a bare value is its own label
    {Label, Value} = case Option of
                         {_, _} -> Option;
                         _ -> {Option, Option}
                     end,
    xml_el(<<"option">>, #{<<"label">> => Label}, [text_el(<<"value">>, Value)]).

-spec validate(validate()) -> [exml:element()].
validate(#{method := Method, datatype := Datatype}) ->
    Attrs = #{<<"xmlns">> => ?NS_DATA_VALIDATE, <<"datatype">> => Datatype},
    [xml_el(<<"validate">>, Attrs, [xml_el(atom_to_binary(Method, utf8), #{}, [])])];
validate(_NoValidation) ->
    [].

-spec xml_el(binary(), #{binary() => binary()}, [exml:element() | #xmlcdata{}]) ->
          exml:element().
xml_el(Name, Attrs, Children) ->
    #xmlel{name = Name, attrs = Attrs, children = Children}.

-spec text_el(binary(), binary()) -> exml:element().
text_el(Name, Text) ->
    #xmlel{name = Name, children = [#xmlcdata{content = Text}]}.
