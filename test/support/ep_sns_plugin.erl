%% @doc A custom `plugin_module' for mod_event_pusher_sns tests: GUIDs of its
%% own and message attributes of every type, computed from the arguments
%% MongooseIM passes, so a test can tell they were used.
-module(ep_sns_plugin).

-behaviour(mod_event_pusher_sns).

-include("jlib.hrl").

-export([user_guid/1, message_attributes/3, message_attributes/5]).

%% @doc `guid:<user>@<server>' (a charlist, as older plugins return).
-spec user_guid(jid:jid()) -> string().
user_guid(#jid{luser = User, lserver = Server}) ->
    "guid:" ++ binary_to_list(User) ++ "@" ++ binary_to_list(Server).

%% @doc String, Number and Binary attributes.
-spec message_attributes(string(), jid:jid(), boolean()) -> mod_event_pusher_sns:attributes().
message_attributes(TopicARN, #jid{luser = User}, IsOnline) ->
    #{"topic" => TopicARN,
      "user" => binary_to_list(User),
      "online" => case IsOnline of true -> 1; false -> 0 end,
      "raw" => <<0, 1, 255>>}.

%% @doc Attributes from the message: its type, body size, a float, bytes
%% and a non-ASCII string.
-spec message_attributes(string(), jid:jid(), jid:jid(), pm | muc, exml:element()) ->
          mod_event_pusher_sns:attributes().
message_attributes(TopicARN, #jid{luser = From}, #jid{luser = To}, MessageType, Packet) ->
    Body = exml_query:path(Packet, [{element, <<"body">>}, cdata], <<>>),
    #{"topic" => TopicARN,
      "route" => binary_to_list(<<From/binary, "->", To/binary>>),
      "message_type" => atom_to_list(MessageType),
      "body_bytes" => byte_size(Body),
      "ratio" => 2.5,
      "raw" => <<"bytes:", Body/binary>>,
      <<"greeting">> => unicode:characters_to_list(<<"zażółć"/utf8>>)}.
