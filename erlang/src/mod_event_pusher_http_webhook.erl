%% @doc (ours) Webhooks of the http backend, configured without Erlang
%% (doc/http.md, "Webhooks"): a handler with any of the options `events',
%% `only_if_recipient_offline', `format' or `signing' chooses its events by
%% name, may send them as one JSON object each (schema version 1), and signs
%% every request as the Standard Webhooks specification says (`webhook-id',
%% `webhook-timestamp', `webhook-signature'). A handler without these options
%% never reaches this module: mod_event_pusher_http runs its callback module
%% exactly as MongooseIM does.
%%
%% Signing keys are kept in a closure: a fun prints as `#Fun<...>', so a
%% handler's options (in a log line, an error or a crash report) never show
%% them, and no function here logs or raises anything holding a secret.
-module(mod_event_pusher_http_webhook).

-include("jlib.hrl").
-include("mongoose_config_spec.hrl").
-include("mod_event_pusher_events.hrl").

%% Config spec (used by mod_event_pusher_http:config_spec/0) and its
%% processing functions
-export([handler_items/0, process_handler/1, decode_secret/1, read_secret_file/1,
         process_signing_entry/1, seal_keys/1]).
%% Events and requests
-export([is_webhook/1, wants_non_message_events/1, request/4, new_id/0, event_names/0]).

-type event_name() :: chat_in | chat_out | groupchat_in | groupchat_out
                    | presence_online | presence_offline | unacknowledged_message.
%% What a webhook handler's options hold besides MongooseIM's.
-type opts() :: #{events := [event_name()],
                  only_if_recipient_offline := boolean(),
                  format := form | json,
                  signing := none | fun(() -> [binary()]),
                  atom() => term()}.
%% The event's ID and time, made by the first handler that sends the event
%% and shared by the others.
-type stamp() :: undefined | {Id :: binary(), Ms :: integer()}.
-type request() :: {Sender :: jid:luser(), LogMeta :: map(), [{binary(), binary()}],
                    Body :: binary()}.
-export_type([event_name/0, opts/0, stamp/0, request/0]).

-define(MESSAGE_EVENTS, [chat_in, chat_out, groupchat_in, groupchat_out]).
-define(EVENTS, ?MESSAGE_EVENTS ++ [presence_online, presence_offline, unacknowledged_message]).
-define(WEBHOOK_KEYS, [events, only_if_recipient_offline, format, signing]).
-define(DEFAULT_CALLBACK, mod_event_pusher_http_defaults).
-define(SCHEMA_VERSION, 1).
%% The Standard Webhooks specification's bounds for a key (24 to 64 bytes).
-define(MIN_KEY_BYTES, 24).
-define(MAX_KEY_BYTES, 64).

%%--------------------------------------------------------------------
%% Config spec
%%--------------------------------------------------------------------

%% @doc The handler options of webhooks, `{Key, Spec}'; none has a default
%% in the parsed config, so a MongooseIM handler parses as it does there.
-spec handler_items() -> [{binary(), mongoose_config_spec:config_node()}].
handler_items() ->
    [{<<"events">>, #list{items = #option{type = atom, validate = {enum, ?EVENTS}},
                          validate = unique_non_empty}},
     {<<"only_if_recipient_offline">>, #option{type = boolean}},
     {<<"format">>, #option{type = atom, validate = {enum, [form, json]}}},
     {<<"signing">>, #list{items = signing_entry_spec(), validate = non_empty,
                           process = fun ?MODULE:seal_keys/1}}].

-spec event_names() -> [event_name()].
event_names() ->
    ?EVENTS.

%% One signing key: `{secret = "whsec_..."}' or `{secret_file = "/path"}'.
%% The key name `secret' is one the config parser redacts in its errors.
-spec signing_entry_spec() -> mongoose_config_spec:config_section().
signing_entry_spec() ->
    #section{items = #{<<"secret">> => #option{type = binary,
                                               process = fun ?MODULE:decode_secret/1},
                       <<"secret_file">> => #option{type = string, validate = non_empty,
                                                    process = fun ?MODULE:read_secret_file/1}},
             process = fun ?MODULE:process_signing_entry/1}.

%% @doc A handler with webhook options gets their defaults: MongooseIM's
%% rule (`chat_in' with a body), the form body, no offline filter, no
%% signature. Rejected: webhook options with a custom `callback_module'
%% (which decides alone what it sends), and a form body for events that are
%% not messages (the form has no place for them).
-spec process_handler(map()) -> map().
process_handler(Opts) ->
    case [K || K <- ?WEBHOOK_KEYS, is_map_key(K, Opts)] of
        [] ->
            Opts;
        Given ->
            case maps:get(callback_module, Opts, ?DEFAULT_CALLBACK) of
                ?DEFAULT_CALLBACK -> ok;
                Mod -> error(#{what => webhook_options_with_callback_module,
                               callback_module => Mod, webhook_options => Given,
                               text => <<"callback_module cannot be combined with events, "
                                         "only_if_recipient_offline, format or signing">>})
            end,
            Full = maps:merge(#{events => [chat_in], only_if_recipient_offline => false,
                                format => form, signing => none}, Opts),
            case Full of
                #{format := form, events := Events} ->
                    case Events -- ?MESSAGE_EVENTS of
                        [] -> Full;
                        Others -> error(#{what => form_format_for_non_message_events,
                                          events => Others,
                                          text => <<"These events need format = \"json\"">>})
                    end;
                #{format := json} ->
                    Full
            end
    end.

%% @doc The key of a `whsec_' secret. Errors never carry the value.
-spec decode_secret(binary()) -> binary().
decode_secret(Secret) ->
    case key(Secret) of
        {ok, Key} -> Key;
        error -> error(#{what => invalid_webhook_secret,
                         text => <<"Expected \"whsec_\" followed by the base64 of 24 to 64 "
                                   "random bytes">>})
    end.

%% @doc The key in a secret file: its text (surrounding white space
%% removed) is a `whsec_' secret. Read when the config is parsed.
-spec read_secret_file(string()) -> binary().
read_secret_file(Path) ->
    case file:read_file(Path) of
        {ok, Text} ->
            case key(string:trim(Text)) of
                {ok, Key} -> Key;
                error -> error(#{what => invalid_webhook_secret, file => list_to_binary(Path),
                                 text => <<"The file must hold \"whsec_\" followed by the base64 "
                                           "of 24 to 64 random bytes">>})
            end;
        {error, Reason} ->
            error(#{what => webhook_secret_file_unreadable, file => list_to_binary(Path),
                    reason => Reason})
    end.

-spec process_signing_entry(#{secret => binary(), secret_file => binary()}) -> binary().
process_signing_entry(#{secret := Key} = Entry) when map_size(Entry) =:= 1 -> Key;
process_signing_entry(#{secret_file := Key} = Entry) when map_size(Entry) =:= 1 -> Key;
process_signing_entry(Entry) ->
    error(#{what => invalid_signing_entry, keys => lists:sort(maps:keys(Entry)),
            text => <<"Each signing entry has exactly one of secret, secret_file">>}).

%% @doc The keys, sealed in a closure (see the module doc).
-spec seal_keys([binary()]) -> fun(() -> [binary()]).
seal_keys(Keys) ->
    fun() -> Keys end.

-spec key(binary()) -> {ok, binary()} | error.
key(<<"whsec_", B64/binary>>) when B64 =/= <<>> ->
    case is_base64(B64) of
        true ->
            Padded = case byte_size(B64) rem 4 of
                         0 -> B64;
                         N -> <<B64/binary, (binary:copy(<<"=">>, 4 - N))/binary>>
                     end,
            try base64:decode(Padded) of
                Key when byte_size(Key) >= ?MIN_KEY_BYTES, byte_size(Key) =< ?MAX_KEY_BYTES ->
                    {ok, Key};
                _ ->
                    error
            catch
                _:_ -> error
            end;
        false ->
            error
    end;
key(_) ->
    error.

-spec is_base64(binary()) -> boolean().
is_base64(B64) ->
    Body = string:trim(B64, trailing, "="),
    byte_size(B64) - byte_size(Body) =< 2 andalso
        lists:all(fun(C) -> C >= $A andalso C =< $Z orelse C >= $a andalso C =< $z orelse
                                C >= $0 andalso C =< $9 orelse C =:= $+ orelse C =:= $/
                  end, binary_to_list(Body)).

%%--------------------------------------------------------------------
%% Events and requests
%%--------------------------------------------------------------------

-spec is_webhook(map()) -> boolean().
is_webhook(Opts) ->
    is_map_key(events, Opts).

%% @doc Whether some handler sends presence or unacknowledged-message events
%% (only then does the backend look at events that are not chat events).
-spec wants_non_message_events([map()]) -> boolean().
wants_non_message_events(Handlers) ->
    lists:any(fun(#{events := Events}) -> Events -- ?MESSAGE_EVENTS =/= [];
                 (_) -> false
              end, Handlers).

%% @doc The request a webhook handler makes for an event, or `skip'.
-spec request(mongoose_acc:t(), mod_event_pusher:event(), opts(), stamp()) ->
          {skip | request(), stamp()}.
request(Acc, Event, Opts = #{events := Events}, Stamp) ->
    Name = event_name(Event),
    case Name =/= skip andalso lists:member(Name, Events) andalso passes_filter(Name, Event, Opts) of
        true ->
            {Id, Ms} = Stamp1 = case Stamp of
                                    undefined -> {new_id(), os:system_time(millisecond)};
                                    _ -> Stamp
                                end,
            {build(Acc, Name, Event, Opts, Id, Ms), Stamp1};
        false ->
            {skip, Stamp}
    end.

%% @doc A new event ID (mongoose_event_pusher_event_id: a UUID version 7).
-spec new_id() -> binary().
new_id() ->
    mongoose_event_pusher_event_id:new().

-spec event_name(mod_event_pusher:event()) -> event_name() | skip.
event_name(#chat_event{type = Type, direction = Dir, packet = Packet}) ->
    case {Type, body(Packet)} of
        {_, null} -> skip;
        {chat, _} when Dir =:= in -> chat_in;
        {chat, _} -> chat_out;
        {groupchat, _} when Dir =:= in -> groupchat_in;
        {groupchat, _} -> groupchat_out;
        _ -> skip
    end;
event_name(#user_status_event{status = online}) -> presence_online;
event_name(#user_status_event{status = offline}) -> presence_offline;
event_name(#unack_msg_event{}) -> unacknowledged_message;
event_name(_) -> skip.

%% The offline filter applies to messages delivered to a user: only when the
%% recipient has no available session (ejabberd_sm:is_offline/1, MongooseIM's
%% test for offline storage and push notifications).
-spec passes_filter(event_name(), mod_event_pusher:event(), opts()) -> boolean().
passes_filter(Name, #chat_event{to = To}, #{only_if_recipient_offline := true})
  when Name =:= chat_out; Name =:= groupchat_out ->
    ejabberd_sm:is_offline(To);
passes_filter(_Name, _Event, _Opts) ->
    true.

-spec build(mongoose_acc:t(), event_name(), mod_event_pusher:event(), opts(), binary(),
            integer()) -> request().
build(Acc, Name, Event, #{format := Format, signing := Signing}, Id, Ms) ->
    Fields = fields(Acc, Event),
    #{sender := Sender, receiver := Receiver} = Fields,
    Body = case Format of
               json -> json_body(Acc, Name, Fields, Id, Ms);
               form -> form_body(Acc, Event, Fields)
           end,
    Headers = [content_type(Format) | signature_headers(Signing, Id, Ms div 1000, Body)],
    LogMeta = #{event => Name, event_id => Id, receiver => Receiver},
    {Sender, LogMeta, Headers, Body}.

%% What the body and the logs say of an event.
-spec fields(mongoose_acc:t(), mod_event_pusher:event()) -> map().
fields(_Acc, #chat_event{type = Type, direction = Dir, from = From, to = To, packet = Packet}) ->
    #{type => Type, direction => Dir, from => full_jid(From), to => full_jid(To),
      body => body(Packet), sender => From#jid.luser, receiver => To#jid.luser};
fields(_Acc, #user_status_event{jid = Jid}) ->
    #{type => presence, direction => null, from => full_jid(Jid), to => null, body => null,
      sender => Jid#jid.luser, receiver => <<>>};
fields(Acc, #unack_msg_event{to = To}) ->
    {From, Body} = case mongoose_acc:element(Acc) of
                       #xmlel{} = El -> {attr_jid(El, <<"from">>), body(El)};
                       _ -> {null, null}
                   end,
    #{type => unacknowledged_message, direction => null, from => From, to => full_jid(To),
      body => Body, sender => To#jid.luser, receiver => To#jid.luser}.

%% Schema version 1 (doc/http.md, "The JSON body"), keys in this order.
-spec json_body(mongoose_acc:t(), event_name(), map(), binary(), integer()) -> binary().
json_body(Acc, Name, Fields, Id, Ms) ->
    #{type := Type, direction := Dir, from := From, to := To, body := Body} = Fields,
    Metadata = mongoose_acc:get(event_pusher, metadata, #{}, Acc),
    mongoose_event_pusher_json:encode(
      {object, [{schema_version, ?SCHEMA_VERSION},
                {id, Id},
                {event, Name},
                {type, Type},
                {direction, Dir},
                {from, From},
                {to, To},
                {body, Body},
                {timestamp, Ms},
                {metadata, Metadata}]}).

%% MongooseIM's default body (mod_event_pusher_http_defaults:prepare_body/7).
-spec form_body(mongoose_acc:t(), mod_event_pusher:event(), map()) -> binary().
form_body(_Acc, #chat_event{from = #jid{lserver = Host}}, Fields) ->
    #{sender := Sender, receiver := Receiver, body := Message} = Fields,
    mod_event_pusher_http_defaults:form(Host, Message, Sender, Receiver).

-spec content_type(form | json) -> {binary(), binary()}.
content_type(json) -> {<<"content-type">>, <<"application/json">>};
content_type(form) -> {<<"content-type">>, <<"application/x-www-form-urlencoded">>}.

%% Standard Webhooks: every key signs "id.timestamp.body" with HMAC-SHA256;
%% the signatures, `v1,<base64>', are separated by spaces.
-spec signature_headers(none | fun(() -> [binary()]), binary(), integer(), binary()) ->
          [{binary(), binary()}].
signature_headers(none, _Id, _Seconds, _Body) ->
    [];
signature_headers(Keys, Id, Seconds, Body) ->
    Timestamp = integer_to_binary(Seconds),
    ToSign = [Id, $., Timestamp, $., Body],
    Signatures = [<<"v1,", (base64:encode(crypto:mac(hmac, sha256, Key, ToSign)))/binary>>
                  || Key <- Keys()],
    [{<<"webhook-id">>, Id},
     {<<"webhook-timestamp">>, Timestamp},
     {<<"webhook-signature">>, iolist_to_binary(lists:join($\s, Signatures))}].

-spec body(exml:element()) -> binary() | null.
body(#xmlel{name = <<"message">>} = Packet) ->
    case exml_query:path(Packet, [{element, <<"body">>}, cdata], <<>>) of
        <<>> -> null;
        Body -> Body
    end;
body(_) ->
    null.

-spec full_jid(jid:jid()) -> binary().
full_jid(Jid) ->
    jid:to_binary(jid:to_lower(Jid)).

-spec attr_jid(exml:element(), binary()) -> binary() | null.
attr_jid(El, Name) ->
    case jid:from_binary(exml_query:attr(El, Name, <<>>)) of
        #jid{} = Jid -> full_jid(Jid);
        _ -> null
    end.
