%% @doc Test host: processing of a TOML document with MongooseIM's config spec.
%%
%% Every node of the document is handled by its spec node
%% (`#section{}', `#list{}' or `#option{}', see mongoose_config_spec) in steps:
%%   parse        - sections and lists recursively, options by type conversion
%%   validate     - the node's validator (mongoose_config_validator)
%%   format_items - sections and lists: items kept as a list or made a map
%%   process      - the node's `process' functions (arity 1, or 2 with the path)
%%   wrap         - how the value joins its parent: `{Key, Value}', the bare
%%                  value, nothing, its items spliced in, or a top-level option
%%                  (`{Key, V}' / `{{Key, HostType}, V}')
%% A failing step turns the node into a config error naming its TOML path;
%% errors travel up in place of values, so one run reports all of them.
%% Defaults of a section are only wrapped. Sections with `include = always'
%% are processed as empty tables when absent.
-module(mongoose_config_parser_toml).

-behaviour(mongoose_config_parser).

-export([parse_file/1]).

%% exported (MongooseIM exports them in its test build) for suites
-export([process/1,
         extract_errors/1]).

-include("mongoose_config_spec.hrl").

-type toml_key() :: binary().
-type toml_value() :: term().
-type toml_section() :: #{toml_key() => toml_value()}.

-type option_value() :: atom() | binary() | string() | float() | integer() | boolean().
-type config_part() :: term().
-type top_level_config() :: {mongoose_config:key(), mongoose_config:value()}.
-type config_error() :: #{class := error, what := atom(), text := string(), any() => any()}.
-type config() :: top_level_config() | config_error().

-type processor() :: processor_fun() | [processor_fun()].
-type processor_fun() :: fun((path(), config_part()) -> config_part())
                       | fun((config_part()) -> config_part()).

-type step() :: parse | validate | format_items | process | wrap.

%% From the current node up to the root: keys, `item' for a list element,
%% `{host, HostType}' for an element of `host_config'.
-type path() :: [toml_key() | item | {host, binary()}].

-export_type([toml_key/0, toml_value/0, toml_section/0, option_value/0,
              config/0, config_error/0, config_part/0, processor/0, path/0]).

-spec parse_file(file:filename_all()) -> mongoose_config_parser:state().
parse_file(FileName) ->
    process(read_or_fail(FileName)).

%% @doc Processes a decoded TOML document (a map with binary keys).
-spec process(toml_section()) -> mongoose_config_parser:state().
process(Content) ->
    Config = handle([], Content, mongoose_config_spec:root()),
    case extract_errors(Config) of
        [] -> build_state(Config);
        Errors -> fail(Errors)
    end.

read_or_fail(FileName) ->
    case mongoose_config_toml_reader:read_file(FileName) of
        {ok, Content} ->
            Content;
        {error, Text} ->
            fail([#{class => error, what => toml_parsing_failed, text => Text,
                    file => FileName}])
    end.

build_state(Config) ->
    [Hosts, HostTypes] = [proplists:get_value(Key, Config, []) || Key <- [hosts, host_types]],
    mongoose_config_parser:build_state(Hosts, HostTypes, Config).

-spec fail([config_error()]) -> no_return().
fail(Errors) ->
    error({config_error, "Invalid TOML configuration", Errors}).

%% Handling of one node

-spec handle(path(), toml_value(), mongoose_config_spec:config_node()) -> [config_part()].
handle(Path, Value, Spec) ->
    run_steps(Path, Value, Spec, steps(Spec), Value).

%% A default value is already in its final form: it is only wrapped.
-spec handle_default(path(), toml_value(), mongoose_config_spec:config_node()) ->
          [config_part()].
handle_default(Path, Value, Spec) ->
    run_steps(Path, Value, Spec, [wrap], Value).

-spec steps(mongoose_config_spec:config_node()) -> [step()].
steps(#option{}) -> [parse, validate, process, wrap];
steps(_SectionOrList) -> [parse, validate, format_items, process, wrap].

%% Input is the node's TOML value (reported on failure); Current is what
%% the steps so far made of it. Once it is a list of errors, it stays one.
-spec run_steps(path(), toml_value(), mongoose_config_spec:config_node(), [step()], term()) ->
          term().
run_steps(_Path, _Input, _Spec, [], Current) ->
    Current;
run_steps(_Path, _Input, _Spec, _Steps, [#{class := error, what := _} | _] = Errors) ->
    Errors;
run_steps(Path, Input, Spec, [Step | Later], Current) ->
    Next = try
               step(Step, Path, Current, Spec)
           catch
               error:Reason:Stacktrace -> [step_error(Step, Path, Input, Reason, Stacktrace)]
           end,
    run_steps(Path, Input, Spec, Later, Next).

step_error(Step, Path, Input, Reason, Stacktrace) ->
    Error = maps:merge(#{class => error,
                         what => toml_processing_failed,
                         text => step_text(Step),
                         toml_path => path_to_string(Path),
                         toml_value => redact(Path, Input),
                         stacktrace => without_args(Stacktrace)},
                       reason_fields(Reason)),
    redact_reason(Path, Error).

step(parse, Path, Value, Spec) ->
    Parsed = parse(Path, Value, Spec),
    case extract_errors(Parsed) of
        [] -> Parsed;
        Errors -> Errors
    end;
step(validate, _Path, Value, Spec) ->
    ok = validate(Value, Spec),
    Value;
step(format_items, _Path, Items, Spec) ->
    format_items(Items, spec_field(format_items, Spec));
step(process, Path, Value, Spec) ->
    run_processors(Path, Value, spec_field(process, Spec));
step(wrap, Path, Value, Spec) ->
    wrap(Path, Value, spec_field(wrap, Spec)).

parse(Path, Value, Spec = #section{}) when is_map(Value) ->
    check_required_keys(Spec, Value),
    validate_keys(Spec, Value),
    parse_section(Path, Value, Spec);
parse(Path, Value, Spec = #list{}) when is_list(Value) ->
    parse_list(Path, Value, Spec);
parse(_Path, Value, #option{type = toml}) ->
    Value;
parse(_Path, Value, #option{type = Type}) when not is_list(Value), not is_map(Value) ->
    convert(Value, Type);
parse(_Path, Value, Spec) ->
    error(#{what => wrong_node_type, expected => node_kind(Spec), value => Value}).

node_kind(#section{}) -> section;
node_kind(#list{}) -> list;
node_kind(#option{type = Type}) -> Type.

step_text(parse) -> "Config node has the wrong type or structure";
step_text(validate) -> "Config value rejected by its validator";
step_text(format_items) -> "Config items cannot be formatted (duplicate keys?)";
step_text(process) -> "Config value rejected by its processing function";
step_text(wrap) -> "Config option is not allowed here".

%% A map raised with `what' names the reason; anything else is the reason.
reason_fields(#{what := What} = M) -> (maps:without([what], M))#{reason => What};
reason_fields(Reason) -> #{reason => Reason}.

%% (ours) Secrets (passwords, the SNS secret key, the s2s dialback secret,
%% JWT and system-metrics secrets) never appear in config errors, which get
%% logged: their values are replaced, and stack frames keep arities instead
%% of arguments.
-define(SECRET_KEYS, [<<"password">>, <<"secret_access_key">>, <<"shared">>, <<"secret">>]).
-define(REDACTED, <<"*****">>).

redact([Key | _], Value) when is_binary(Key) ->
    case lists:member(Key, ?SECRET_KEYS) of
        true -> ?REDACTED;
        false -> redact_nested(Value)
    end;
redact(_Path, Value) ->
    redact_nested(Value).

redact_nested(M) when is_map(M) ->
    maps:map(fun(K, V) ->
                     case lists:member(K, ?SECRET_KEYS) of
                         true -> ?REDACTED;
                         false -> redact_nested(V)
                     end
             end, M);
redact_nested(L) when is_list(L) ->
    [redact_nested(V) || V <- L];
redact_nested(V) ->
    V.

redact_reason([Key | _], Error = #{value := _}) when is_binary(Key) ->
    case lists:member(Key, ?SECRET_KEYS) of
        true -> Error#{value := ?REDACTED};
        false -> Error
    end;
redact_reason(_Path, Error) ->
    Error.

without_args(Stacktrace) ->
    [case Frame of
         {M, F, Args, Loc} when is_list(Args) -> {M, F, length(Args), Loc};
         _ -> Frame
     end || Frame <- Stacktrace].

%% Sections

-spec parse_section(path(), toml_section(), mongoose_config_spec:config_section()) ->
          [config_part()].
parse_section(Path, Section, #section{items = Items, defaults = Defaults}) ->
    Present = maps:merge(always_included(Items), Section),
    Processed = maps:map(fun(K, V) -> handle([K | Path], V, item_spec(K, Items)) end, Present),
    Missing = maps:without(maps:keys(Present), Defaults),
    ProcessedDefaults = maps:map(fun(K, V) -> handle_default([K | Path], V, maps:get(K, Items)) end,
                                 Missing),
    %% sorted by TOML key, so the output does not depend on map order
    All = lists:keysort(1, maps:to_list(maps:merge(ProcessedDefaults, Processed))),
    lists:append([Parts || {_K, Parts} <- All]).

%% The spec of a key: its own, else the section's `default' spec. (ours) A
%% `default' given as a fun of the key yields the spec at parse time; the
%% `modules' section uses it to ask each module for its config_spec/0.
item_spec(Key, Items) ->
    case Items of
        #{Key := Spec} -> Spec;
        #{default := SpecFun} when is_function(SpecFun, 1) -> SpecFun(Key);
        #{default := Spec} -> Spec;
        _ -> error(#{what => unexpected_key, key => Key})
    end.

always_included(Items) ->
    maps:fold(fun(Key, #section{include = always}, Acc) -> Acc#{Key => #{}};
                 (_Key, _Spec, Acc) -> Acc
              end, #{}, Items).

check_required_keys(#section{required = Required, items = Items}, Section) ->
    Keys = case Required of
               all -> lists:delete(default, maps:keys(Items));
               _ -> Required
           end,
    case lists:filter(fun(Key) -> not is_map_key(Key, Section) end, Keys) of
        [] -> ok;
        Missing -> error(#{what => missing_mandatory_keys, missing_keys => Missing})
    end.

validate_keys(#section{validate_keys = Validator}, Section) ->
    maps:foreach(fun(Key, _Value) ->
                         ok = mongoose_config_validator:validate(b2a(Key), atom, Validator)
                 end, Section).

%% Lists

-spec parse_list(path(), [toml_value()], mongoose_config_spec:config_list()) ->
          [config_part()].
parse_list(Path, Elements, #list{items = ItemSpec}) ->
    lists:append([handle([item_key(Path, Elem) | Path], Elem, ItemSpec) || Elem <- Elements]).

%% Elements of `host_config' carry their host type in the path.
item_key([<<"host_config">>], Elem) -> host_item(Elem);
item_key(_Path, _Elem) -> item.

host_item(#{<<"host_type">> := HostType}) -> {host, HostType};
host_item(#{<<"host">> := Host}) -> {host, Host};
host_item(_Elem) -> item.

%% Steps

%% TOML gives text, integers, floats and booleans; the option's type says
%% what the text or number becomes.
convert(V, Type) when is_binary(V) ->
    from_text(V, Type);
convert(V, Type) when is_integer(V) ->
    lists:member(Type, [integer, int_or_infinity, int_or_atom]) orelse wrong_type(V, Type),
    V;
convert(V, boolean) when is_boolean(V) -> V;
convert(V, float) when is_float(V) -> V;
convert(V, Type) -> wrong_type(V, Type).

from_text(V, binary) -> V;
from_text(V, string) -> binary_to_list(V);
from_text(V, Type) when Type =:= atom; Type =:= int_or_atom -> b2a(V);
from_text(<<"infinity">>, int_or_infinity) -> infinity;
from_text(V, Type) -> wrong_type(V, Type).

-spec wrong_type(term(), atom()) -> no_return().
wrong_type(V, Type) ->
    error(#{what => wrong_type, expected => Type, value => V}).

validate(Value, Spec) ->
    case Spec of
        #option{type = Type, validate = How} ->
            mongoose_config_validator:validate(Value, Type, How);
        #list{validate = How} ->
            mongoose_config_validator:validate_list(Value, How);
        #section{validate = How} ->
            mongoose_config_validator:validate_section(Value, How)
    end.

%% The `format_items', `process' or `wrap' field of a node's spec (an
%% option has no items to format).
spec_field(Field, #section{format_items = F, process = P, wrap = W}) -> pick(Field, F, P, W);
spec_field(Field, #list{format_items = F, process = P, wrap = W}) -> pick(Field, F, P, W);
spec_field(Field, #option{process = P, wrap = W}) when Field =/= format_items ->
    pick(Field, none, P, W).

pick(format_items, Format, _Process, _Wrap) -> Format;
pick(process, _Format, Process, _Wrap) -> Process;
pick(wrap, _Format, _Process, Wrap) -> Wrap.

format_items(KVs, map) ->
    mongoose_config_validator:validate_list([K || {K, _} <- KVs], unique),
    maps:from_list(KVs);
format_items(Items, list) when is_list(Items) ->
    Items.

%% One processing function or a chain of them, each fed the previous result;
%% a function of arity 2 also gets the node's path.
-spec run_processors(path(), config_part(), processor()) -> config_part().
run_processors(Path, Value, Chain) when is_list(Chain) ->
    lists:foldl(fun(Processor, Acc) -> run_processors(Path, Acc, Processor) end, Value, Chain);
run_processors(Path, Value, Processor) ->
    case erlang:fun_info(Processor, arity) of
        {arity, 1} -> Processor(Value);
        {arity, 2} -> Processor(Path, Value)
    end.

-spec wrap(path(), config_part(), mongoose_config_spec:wrapper()) -> [config_part()].
wrap(_Path, _V, remove) ->
    [];
wrap(_Path, V, none) when is_list(V) ->
    V;
wrap(_Path, V, item) ->
    [V];
wrap([item | _], V, default) ->
    [V];
wrap([Key | _], V, default) ->
    [{b2a(Key), V}];
wrap([Key | _] = Path, V, Scope) when Scope =:= host_config; Scope =:= global_config ->
    [{top_level_key(b2a(Key), host_of(Path), Scope), V}].

top_level_key(Key, HostType, host_config) ->
    {Key, HostType};
top_level_key(Key, global, global_config) ->
    Key;
top_level_key(_Key, HostType, global_config) ->
    error(#{what => global_option_in_host_config, host_type => HostType,
            text => <<"Global option: not allowed in host_config">>}).

%% Paths run from the node up to the root, so a `host_config' element's host
%% is the second-to-last entry.
host_of(Path) when length(Path) >= 2 ->
    case lists:nthtail(length(Path) - 2, Path) of
        [{host, HostType}, <<"host_config">>] -> HostType;
        _ -> global
    end;
host_of(_Path) ->
    global.

path_to_string(Path) ->
    string:join([binary_to_list(K) || K <- lists:reverse(Path), is_binary(K)], ".").

b2a(B) -> binary_to_atom(B, utf8).

%% Errors

%% @doc All config errors nested anywhere in processed config parts.
-spec extract_errors(config_part()) -> [config_error()].
extract_errors(#{class := error, what := _} = Error) -> [Error];
extract_errors(L) when is_list(L) -> lists:flatmap(fun extract_errors/1, L);
extract_errors(T) when is_tuple(T) -> extract_errors(tuple_to_list(T));
extract_errors(M) when is_map(M) -> extract_errors(maps:to_list(M));
extract_errors(_) -> [].
