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
    case mongoose_config_toml_reader:read_file(FileName) of
        {ok, Content} ->
            process(Content);
        {error, Text} ->
            error(config_error([#{class => error,
                                  what => toml_parsing_failed,
                                  text => Text,
                                  file => FileName}]))
    end.

%% @doc Processes a decoded TOML document (a map with binary keys).
-spec process(toml_section()) -> mongoose_config_parser:state().
process(Content) ->
    Config = handle([], Content, mongoose_config_spec:root()),
    case extract_errors(Config) of
        [] ->
            Hosts = proplists:get_value(hosts, Config, []),
            HostTypes = proplists:get_value(host_types, Config, []),
            mongoose_config_parser:build_state(Hosts, HostTypes, Config);
        Errors ->
            error(config_error(Errors))
    end.

config_error(Errors) ->
    {config_error, "Invalid TOML configuration", Errors}.

%% Handling of one node

-spec handle(path(), toml_value(), mongoose_config_spec:config_node()) -> [config_part()].
handle(Path, Value, Spec = #option{}) ->
    handle(Path, Value, Spec, [parse, validate, process, wrap]);
handle(Path, Value, Spec) ->
    handle(Path, Value, Spec, [parse, validate, format_items, process, wrap]).

%% A default value is already in its final form.
-spec handle_default(path(), toml_value(), mongoose_config_spec:config_node()) ->
          [config_part()].
handle_default(Path, Value, Spec) ->
    handle(Path, Value, Spec, [wrap]).

-spec handle(path(), toml_value(), mongoose_config_spec:config_node(), [step()]) ->
          [config_part()].
handle(Path, Value, Spec, Steps) ->
    lists:foldl(fun(_Step, [#{class := error, what := _} | _] = Errors) -> Errors;
                   (Step, Acc) -> try_step(Step, Path, Value, Acc, Spec)
                end, Value, Steps).

try_step(Step, Path, Value, Acc, Spec) ->
    try
        step(Step, Path, Acc, Spec)
    catch error:Reason:Stacktrace ->
            Basic = #{class => error,
                      what => toml_processing_failed,
                      text => step_text(Step),
                      toml_path => path_to_string(Path),
                      toml_value => redact(Path, Value),
                      stacktrace => without_args(Stacktrace)},
            [redact_reason(Path, maps:merge(Basic, reason_fields(Reason)))]
    end.

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
    format_items(Items, format_items_spec(Spec));
step(process, Path, Value, Spec) ->
    process(Path, Value, process_spec(Spec));
step(wrap, Path, Value, Spec) ->
    wrap(Path, Value, wrap_spec(Spec)).

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
reason_fields(#{what := What} = M) -> maps:remove(what, M#{reason => What});
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
    maps:from_list([{K, #{}} || {K, #section{include = always}} <- maps:to_list(Items)]).

check_required_keys(#section{required = all, items = Items}, Section) ->
    ensure_keys([K || K <- maps:keys(Items), K =/= default], Section);
check_required_keys(#section{required = Required}, Section) ->
    ensure_keys(Required, Section).

ensure_keys(Keys, Section) ->
    case [K || K <- Keys, not maps:is_key(K, Section)] of
        [] -> ok;
        Missing -> error(#{what => missing_mandatory_keys, missing_keys => Missing})
    end.

validate_keys(#section{validate_keys = Validator}, Section) ->
    lists:foreach(fun(Key) -> ok = mongoose_config_validator:validate(b2a(Key), atom, Validator) end,
                  maps:keys(Section)).

%% Lists

-spec parse_list(path(), [toml_value()], mongoose_config_spec:config_list()) ->
          [config_part()].
parse_list(Path, Elements, #list{items = ItemSpec}) ->
    lists:flatmap(fun(Elem) -> handle([item_key(Path, Elem) | Path], Elem, ItemSpec) end,
                  Elements).

%% Elements of `host_config' carry their host type in the path.
item_key([<<"host_config">>], #{<<"host_type">> := HostType}) -> {host, HostType};
item_key([<<"host_config">>], #{<<"host">> := Host}) -> {host, Host};
item_key(_, _) -> item.

%% Steps

convert(V, boolean) when is_boolean(V) -> V;
convert(V, binary) when is_binary(V) -> V;
convert(V, string) when is_binary(V) -> binary_to_list(V);
convert(V, atom) when is_binary(V) -> b2a(V);
convert(<<"infinity">>, int_or_infinity) -> infinity;
convert(V, int_or_infinity) when is_integer(V) -> V;
convert(V, int_or_atom) when is_integer(V) -> V;
convert(V, int_or_atom) when is_binary(V) -> b2a(V);
convert(V, integer) when is_integer(V) -> V;
convert(V, float) when is_float(V) -> V;
convert(V, Type) -> error(#{what => wrong_type, expected => Type, value => V}).

validate(Value, #section{validate = Validator}) ->
    mongoose_config_validator:validate_section(Value, Validator);
validate(Value, #list{validate = Validator}) ->
    mongoose_config_validator:validate_list(Value, Validator);
validate(Value, #option{type = Type, validate = Validator}) ->
    mongoose_config_validator:validate(Value, Type, Validator).

format_items_spec(#section{format_items = F}) -> F;
format_items_spec(#list{format_items = F}) -> F.

format_items(KVs, map) ->
    mongoose_config_validator:validate_list([K || {K, _} <- KVs], unique),
    maps:from_list(KVs);
format_items(Items, list) when is_list(Items) ->
    Items.

process_spec(#section{process = P}) -> P;
process_spec(#list{process = P}) -> P;
process_spec(#option{process = P}) -> P.

-spec process(path(), config_part(), processor()) -> config_part().
process(Path, Value, Funs) when is_list(Funs) ->
    lists:foldl(fun(F, V) -> process(Path, V, F) end, Value, Funs);
process(_Path, Value, F) when is_function(F, 1) -> F(Value);
process(Path, Value, F) when is_function(F, 2) -> F(Path, Value).

wrap_spec(#section{wrap = W}) -> W;
wrap_spec(#list{wrap = W}) -> W;
wrap_spec(#option{wrap = W}) -> W.

-spec wrap(path(), config_part(), mongoose_config_spec:wrapper()) -> [config_part()].
wrap([Key | _] = Path, V, host_config) ->
    [{{b2a(Key), host_of(Path)}, V}];
wrap([Key | _] = Path, V, global_config) ->
    case host_of(Path) of
        global -> [{b2a(Key), V}];
        HostType -> error(#{what => global_option_in_host_config, host_type => HostType,
                            text => <<"Global option: not allowed in host_config">>})
    end;
wrap([item | _], V, default) -> [V];
wrap([Key | _], V, default) -> [{b2a(Key), V}];
wrap(_Path, V, item) -> [V];
wrap(_Path, _V, remove) -> [];
wrap(_Path, V, none) when is_list(V) -> V.

host_of(Path) ->
    case lists:reverse(Path) of
        [<<"host_config">>, {host, HostType} | _] -> HostType;
        _ -> global
    end.

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
