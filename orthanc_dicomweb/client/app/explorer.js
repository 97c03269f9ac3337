/**
 * DICOMweb plugin (Python): extensions of Orthanc Explorer.
 * "Open DICOMweb client" on the home page, "Send to DICOMweb server" on the pages of a
 * patient, study, series and instance (the push runs as a job, shown on the job's page).
 **/

(function () {
  // Orthanc Explorer lives at {orthanc}/app/explorer.html: the DICOMweb root is one level up.
  var dicomWebRoot = '..' + __DICOMWEB_ROOT__;

  function chooseDicomWebServer(callback) {
    $.ajax({
      url: dicomWebRoot + 'servers',
      dataType: 'json',
      cache: false,
      error: function () {
        alert('Cannot list the DICOMweb servers');
      },
      success: function (servers) {
        var chosen = '';
        var items = $('<ul>').attr('data-role', 'listview').attr('id', 'dicomweb-servers');
        if (servers.length === 0) {
          items.append($('<li>').text('No DICOMweb server is configured'));
        } else {
          items.append('<li data-role="list-divider">DICOMweb servers</li>');
        }
        $.each(servers, function (index, name) {
          var link = $('<a>').attr('href', '#').attr('rel', 'close').text(name);
          items.append($('<li>').attr('name', name).append(link).click(function () {
            chosen = name;
          }));
        });
        $(document).simpledialog2({
          mode: 'blank',
          animate: false,
          headerText: 'Send to DICOMweb server',
          headerClose: true,
          forceInput: false,
          width: '100%',
          blankContent: items,
          callbackClose: function () {
            // The dialog's close animation must end before a new page can be shown.
            var timer = setInterval(function () {
              if (!$('#dialog').is(':visible')) {
                clearInterval(timer);
                if (chosen !== '') {
                  callback(chosen);
                }
              }
            }, 100);
          }
        });
      }
    });
  }

  function sendToServer(resourceId, server) {
    $.ajax({
      url: dicomWebRoot + 'servers/' + encodeURIComponent(server) + '/stow',
      type: 'POST',
      dataType: 'json',
      contentType: 'application/json',
      data: JSON.stringify({ Resources: [resourceId], Synchronous: false }),
      error: function (xhr) {
        var message = 'Cannot start sending to ' + server;
        try {
          message += ': ' + JSON.parse(xhr.responseText).Message;
        } catch (e) {
          message += ' (HTTP ' + xhr.status + ')';
        }
        alert(message);
      },
      success: function (job) {
        $.mobile.changePage('#job?uuid=' + job.ID);
      }
    });
  }

  function addSendButton(buttonId, positionOnPage) {
    $('#' + buttonId).remove();
    var button = $('<a>')
      .attr('id', buttonId)
      .attr('data-role', 'button')
      .attr('href', '#')
      .attr('data-icon', 'forward')
      .attr('data-theme', 'e')
      .text('Send to DICOMweb server')
      .button();
    button.insertAfter($('#' + positionOnPage));
    button.click(function (event) {
      event.preventDefault();
      var resourceId = $.mobile.pageData && $.mobile.pageData.uuid;
      if (resourceId) {
        chooseDicomWebServer(function (server) {
          sendToServer(resourceId, server);
        });
      }
    });
  }

  $.each(['patient', 'study', 'series', 'instance'], function (index, level) {
    $('#' + level).live('pagebeforeshow', function () {
      addSendButton('dicomweb-send-' + level, level + '-info');
    });
  });

  $('#lookup').live('pagebeforeshow', function () {
    $('#open-dicomweb-client').remove();
    var link = $('<a>')
      .attr('id', 'open-dicomweb-client-button')
      .attr('data-role', 'button')
      .attr('href', dicomWebRoot + 'app/client/index.html')
      .attr('target', '_blank')
      .attr('rel', 'external')
      .attr('data-icon', 'forward')
      .attr('data-theme', 'a')
      .text('Open DICOMweb client')
      .button();
    var block = $('<fieldset>')
      .attr('id', 'open-dicomweb-client')
      .addClass('ui-grid-b')
      .append($('<div>').addClass('ui-block-a'))
      .append($('<div>').addClass('ui-block-b').append(link));
    block.insertAfter($('#lookup-result'));
  });
})();
